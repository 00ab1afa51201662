"""The Prefect UI shows our flow run as Completed, rendered by a real headless browser.

The browser test is slow (~55 s: a `prefect server start`, the demo, chromium) and needs
Debian's `chromium`; without it the test is skipped, as on machines that cannot install one.
"""

import pytest

from tooling.devtools.check_prefect_ui import FlowRun, find_chromium, main, state_shown_for_run


@pytest.mark.slow
@pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium is not installed (sudo apt-get install -y chromium)",
)
def test_flow_run_shows_completed_in_the_ui(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([])
    verdict = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0, verdict
    assert verdict.startswith("PASS: ")


RUN = FlowRun(id="38da8363", name="nano-earwig", state_name="Completed")


def _row(run_id: str, name: str, state: str) -> str:
    return (
        '<li><a href="/v2/flows/flow/f1">slack_pipeline</a> / '
        f'<a href="/v2/runs/flow-run/{run_id}">{name}</a>'
        f'<span data-slot="badge"><svg></svg>{state}</span><span>7s</span></li>'
    )


@pytest.mark.parametrize(
    "dom, shown",
    [
        (_row("38da8363", "nano-earwig", "Completed"), "Completed"),
        (_row("38da8363", "nano-earwig", "Failed") + _row("x", "other", "Completed"), "Failed"),
        (_row("38da8363", "nano-earwig", "") + _row("x", "other", "Completed"), ""),
        (_row("x", "other", "Completed"), None),
        ("<div>Loading...</div>", None),
    ],
)
def test_state_is_read_from_the_runs_own_row(dom: str, shown: object) -> None:
    """The state badge must follow the link to this run, not another run's row."""
    assert state_shown_for_run(dom, RUN) == shown
