"""What a team copies: the product alone deploys and runs, without the tooling beside it.

The README's map names the product (the flows, `slack_source/`, `orchestration/` and the
configuration) and the tooling (`tooling/`, `tests/`). These tests hold the code to that map:
nothing in the product imports the tooling, and a copy of the product alone imports every flow
and resolves every deployment of `prefect.yaml`, as `prefect deploy --all` does.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = (
    "slack_pipeline_with_prefect.py",
    "slack_workspaces_with_prefect.py",
    "slack_import_export_with_prefect.py",
    "slack_source",
    "orchestration",
    ".dlt",
    "prefect.yaml",
    "prefect.toml",
    "requirements.txt",
    "pyproject.toml",
    "run.sh",
)
# Everything else at the top level: tooling, tests, docs and the repository's own files.
NOT_PRODUCT = {"tooling", "tests", "docs", "README.md", ".ci", ".gitignore"}
TOOLING = ("tooling", "tests")


def tracked_top_level() -> set:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return {name.split("/", 1)[0] for name in files}


def product_modules() -> list:
    paths = []
    for entry in PRODUCT:
        path = ROOT / entry
        paths += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [path for path in paths if path.suffix == ".py"]


def imported_packages(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def python_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """Python in `folder` with nothing of this checkout or its settings on the path."""
    home = str(folder.parent)
    return subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "HOME": home, "PREFECT_HOME": home},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_top_level_entry_is_product_or_tooling():
    assert tracked_top_level() <= set(PRODUCT) | NOT_PRODUCT
    assert set(PRODUCT) <= tracked_top_level()


def test_nothing_in_the_product_imports_the_tooling():
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & set(TOOLING))
        for path in product_modules()
        if imported_packages(path) & set(TOOLING)
    }
    assert offenders == {}


def test_the_product_alone_imports_every_flow_and_resolves_every_deployment(tmp_path):
    """A team deletes the tooling: what remains imports, and each `prefect.yaml` entrypoint
    loads the flow it names (what `prefect deploy --all` reads), with no tooling on the path."""
    copy = tmp_path / "product"
    copy.mkdir()
    for entry in PRODUCT:
        source = ROOT / entry
        if source.is_dir():
            shutil.copytree(source, copy / entry, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / entry)
    deployments = yaml.safe_load((copy / "prefect.yaml").read_text())["deployments"]
    entrypoints = sorted({deployment["entrypoint"] for deployment in deployments})
    script = (
        "import sys\n"
        "from prefect.flows import load_flow_from_entrypoint\n"
        "import slack_pipeline_with_prefect, slack_workspaces_with_prefect\n"
        "import slack_import_export_with_prefect\n"
        "for entrypoint in sys.argv[1:]:\n"
        "    print(entrypoint, load_flow_from_entrypoint(entrypoint).name)\n"
        "assert not any(m.split('.')[0] in ('tooling', 'tests') for m in sys.modules), 'tooling'\n"
    )
    result = python_in(copy, "-c", script, *entrypoints)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "slack_pipeline_with_prefect.py:slack_pipeline slack_pipeline",
        "slack_workspaces_with_prefect.py:slack_workspaces slack_workspaces",
    ]
    help_text = python_in(copy, "slack_pipeline_with_prefect.py", "--help")
    assert help_text.returncode == 0, help_text.stderr[-3000:]
    assert "{serve,run,check,reconcile,import-export}" in help_text.stdout


def test_run_sh_sets_up_product_commands_without_the_tooling():
    """`./run.sh run|check|serve|import-export|workspaces` go through `setup` and
    `prepare_prefect_home` only: neither may need anything under tooling/."""
    script = (ROOT / "run.sh").read_text()
    for function in ("setup", "prepare_prefect_home"):
        body = script.split(f"\n{function}() {{\n", 1)[1].split("\n}\n", 1)[0]
        assert "tooling" not in body, function
    default_arm = script.split("\n  *)", 1)[1].splitlines()[0]
    assert "slack_pipeline_with_prefect.py" in default_arm and "tooling" not in default_arm
