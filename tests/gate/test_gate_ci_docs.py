"""docs/ci.md and the example CI files: the command line they show, and that the files work.

The flags are parsed from the docs' command line and must be ``GATE_FLAGS``, which the
command defines; the example workflows may use no other flag. The GitHub workflow's shell
steps and the GitLab job's script are then run for real (bash, curl, a loopback notes API)
with stand-ins for ``monitor`` and ``gh`` that exit as a gate would: exit codes 0, 1 and 3
must each post the report and end the job with that code.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI, Request, Response

from monitor.gate import GATE_FLAGS, TOKEN_ENV
from tests.servers import ROOT, deadline, serve_in_thread

DOCS = ROOT / "docs" / "ci.md"
GITHUB = ROOT / "docs" / "examples" / "github-actions-gate.yml"
GITLAB = ROOT / "docs" / "examples" / "gitlab-ci-gate.yml"
GITHUB_PIPELINE = ROOT / "docs" / "examples" / "github-actions-pipeline.yml"
GITLAB_PIPELINE = ROOT / "docs" / "examples" / "gitlab-ci-pipeline.yml"
FLAG = re.compile(r"(?<![\w-])(--?[a-z][a-z-]*)")


def docs_command() -> str:
    """The ``monitor gate`` synopsis: the code block that starts with it."""
    blocks = re.findall(r"```\n(monitor gate .*?)```", DOCS.read_text(), re.DOTALL)
    assert len(blocks) == 1, "docs/ci.md shows the command line in one plain code block"
    return str(blocks[0])


def gate_commands(script: str, command: str = "gate") -> list[list[str]]:
    """Every ``monitor gate`` (or ``monitor COMMAND``) command in a shell script, as words."""
    joined = script.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words[:2] == ["monitor", command]:
            commands.append(words[2 : words.index("||")] if "||" in words else words[2:])
    return commands


def flags(words: list[str]) -> list[str]:
    return [w for w in words if w.startswith("-")]


def github_workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(GITHUB.read_text())
    return loaded


def gitlab_job() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(GITLAB.read_text())["model-gate"]
    return loaded


def shell_scripts(path: Path) -> str:
    """The shell an example file runs: the steps' ``run`` or the job's ``script``."""
    if path == GITHUB:
        steps = github_workflow()["jobs"]["gate"]["steps"]
        return "\n".join(step["run"] for step in steps if "run" in step)
    return "\n".join(gitlab_job()["script"])


def test_docs_command_line_has_exactly_the_gate_flags() -> None:
    assert tuple(FLAG.findall(docs_command())) == GATE_FLAGS


def test_docs_document_every_flag_and_the_token_variable() -> None:
    text = DOCS.read_text()
    for flag in GATE_FLAGS:
        assert f"| `{flag}" in text, f"docs/ci.md has no table row for {flag}"
    assert f"`{TOKEN_ENV}`" in text
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in text


@pytest.mark.parametrize(
    "path",
    [GITHUB, GITLAB, GITHUB_PIPELINE, GITLAB_PIPELINE],
    ids=["github", "gitlab", "github-pipeline", "gitlab-pipeline"],
)
def test_docs_show_the_example_files_verbatim(path: Path) -> None:
    assert f"```yaml\n{path.read_text()}```" in DOCS.read_text()


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_example_gate_commands_use_only_gate_flags(path: Path) -> None:
    [command] = gate_commands(shell_scripts(path))
    used = flags(command)
    assert set(used) <= set(GATE_FLAGS), f"unknown flags: {set(used) - set(GATE_FLAGS)}"
    assert {"-c", "--suite", "--model", "--remote", "--report-md", "--junit"} <= set(used)
    assert command[command.index("--report-md") + 1] == "gate.md"
    assert command[command.index("--junit") + 1] == "gate.xml"


def test_github_workflow_shape() -> None:
    workflow = github_workflow()
    # YAML 1.1 reads the key ``on`` as true.
    assert "pull_request" in workflow[True]
    assert workflow["permissions"]["pull-requests"] == "write"
    steps = workflow["jobs"]["gate"]["steps"]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"]
    gate = next(s for s in steps if s.get("id") == "gate")
    assert gate["env"][TOKEN_ENV] == "${{ secrets.MONITOR_TOKEN }}"
    assert '--remote "${{ vars.MONITOR_URL }}"' in gate["run"]
    comment = next(s for s in steps if "gh pr comment" in s.get("run", ""))
    assert comment["if"] == "always()"
    assert (
        'gh pr comment "$PR" --body-file gate.md --edit-last'
        ' || gh pr comment "$PR" --body-file gate.md'
    ) in comment["run"]
    assert steps[-1]["if"] == "always()" and "exit" in steps[-1]["run"]


def test_gitlab_job_shape() -> None:
    job = gitlab_job()
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert job["artifacts"]["reports"]["junit"] == "gate.xml"
    assert job["artifacts"]["when"] == "always"
    script = "\n".join(job["script"])
    assert "/merge_requests/$CI_MERGE_REQUEST_IID/notes" in script
    assert '--header "PRIVATE-TOKEN: $GATE_NOTES_TOKEN"' in script


# Running the examples

STAND_IN_MONITOR = """#!/usr/bin/env bash
# Records its arguments and token, writes the reports it is asked for, exits as told:
# with the first line of $STAND_IN/exits (removed), when there is one, else $GATE_EXIT.
printf '%s\\n' "$@" > "$STAND_IN/monitor-args"
printf '%s\\n' "$*" >> "$STAND_IN/monitor-calls"
printf '%s' "$MONITOR_TOKEN" > "$STAND_IN/monitor-token"
code="$GATE_EXIT"
if [ -s "$STAND_IN/exits" ]; then
    code=$(head -n 1 "$STAND_IN/exits")
    tail -n +2 "$STAND_IN/exits" > "$STAND_IN/exits.rest"
    mv "$STAND_IN/exits.rest" "$STAND_IN/exits"
fi
while [ $# -gt 0 ]; do
    case "$1" in
        --report-md) cp "$STAND_IN/report.md" "$2"; shift ;;
        --junit) printf '<testsuites/>\\n' > "$2"; shift ;;
    esac
    shift
done
exit "$code"
"""

STAND_IN_GH = """#!/usr/bin/env bash
# Records each call; --edit-last fails as it does when there is no earlier comment.
printf '%s\\n' "$*" >> "$STAND_IN/gh-calls"
printf '%s %s\\n' "$GH_TOKEN" "$GH_REPO" > "$STAND_IN/gh-env"
case " $* " in *" --edit-last "*) echo "no comments found for current user" >&2; exit 1 ;; esac
exit 0
"""

REPORT = "<!-- monitor-gate -->\n**Regressed**: qa & more | a \\| b\n\n| x | y |\n"
URL, TOKEN = "https://monitor.example.test", "tok-for-ci-0123456789"


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def stand_ins(tmp_path: Path) -> Path:
    if shutil.which("bash") is None or shutil.which("curl") is None:
        pytest.skip("bash and curl are needed to run the example CI files")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "monitor", STAND_IN_MONITOR)
    _executable(bin_dir / "gh", STAND_IN_GH)
    (tmp_path / "report.md").write_text(REPORT)
    (tmp_path / "work").mkdir()
    return tmp_path


def _environment(stand_in: Path, gate_exit: int, **extra: str) -> dict[str, str]:
    return {
        "PATH": f"{stand_in / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(stand_in),
        "STAND_IN": str(stand_in),
        "GATE_EXIT": str(gate_exit),
        **extra,
    }


class GitHubRunner:
    """Runs a workflow's ``run`` steps as the runner would (``bash -e``, expressions
    substituted, ``$GITHUB_OUTPUT`` read back, ``if: always()`` after a failure);
    ``uses`` steps and the install step are skipped."""

    def __init__(self, stand_in: Path, gate_exit: int) -> None:
        self.stand_in, self.gate_exit = stand_in, gate_exit
        self.outputs: dict[str, dict[str, str]] = {}
        self.context = {
            "secrets.MONITOR_TOKEN": TOKEN,
            "vars.MONITOR_URL": URL,
            "github.token": "gh-job-token",
            "github.repository": "acme/models",
            "github.event.pull_request.number": "17",
        }

    def expand(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("steps."):
                _, step, _, key = name.split(".")
                return self.outputs.get(step, {}).get(key, "")
            assert name in self.context, f"the test does not know the expression {name}"
            return self.context[name]

        return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", value, text)

    def run(self, steps: list[dict[str, Any]]) -> tuple[bool, int]:
        failed, last_code = False, 0
        for step in steps:
            if "run" not in step or step["run"].startswith("pip install"):
                continue
            if failed and "always()" not in step.get("if", ""):
                continue
            last_code = self.step(step)
            failed = failed or last_code != 0
        return failed, last_code

    def step(self, step: dict[str, Any]) -> int:
        work = self.stand_in / "work"
        output = self.stand_in / "github-output"
        output.write_text("")
        env = {k: self.expand(str(v)) for k, v in step.get("env", {}).items()}
        env |= {
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(self.stand_in / "summary.md"),
        }
        script = self.stand_in / "step.sh"
        script.write_text(self.expand(step["run"]))
        done = subprocess.run(
            ["bash", "-e", str(script)],
            cwd=work,
            env=_environment(self.stand_in, self.gate_exit, **env),
            capture_output=True,
            text=True,
            timeout=deadline(60),
        )
        if "id" in step:
            pairs = [line.split("=", 1) for line in output.read_text().splitlines()]
            self.outputs[step["id"]] = dict(pairs)
        return done.returncode


@pytest.mark.integration
@pytest.mark.parametrize("gate_exit", [0, 1, 3], ids=["pass", "regressed", "infrastructure"])
def test_github_workflow_posts_the_report_and_fails_with_the_gates_code(
    stand_ins: Path, gate_exit: int
) -> None:
    runner = GitHubRunner(stand_ins, gate_exit)
    failed, code = runner.run(github_workflow()["jobs"]["gate"]["steps"])
    assert (failed, code) == (gate_exit != 0, gate_exit)
    args = (stand_ins / "monitor-args").read_text().splitlines()
    assert set(flags(args)) <= set(GATE_FLAGS)
    assert args[args.index("--remote") + 1] == URL
    assert (stand_ins / "monitor-token").read_text() == TOKEN
    assert (stand_ins / "gh-calls").read_text().splitlines() == [
        "pr comment 17 --body-file gate.md --edit-last",
        "pr comment 17 --body-file gate.md",
    ]
    assert (stand_ins / "gh-env").read_text() == "gh-job-token acme/models\n"
    assert (stand_ins / "summary.md").read_text() == REPORT


class NotesApi:
    """GitLab's ``POST /projects/:id/merge_requests/:iid/notes``, recording each note."""

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.add_api_route(
            "/api/v4/projects/{project}/merge_requests/{iid}/notes",
            self.post,
            methods=["POST"],
        )

    async def post(self, project: str, iid: str, request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode(), keep_blank_values=True)
        self.notes.append(
            {
                "project": project,
                "iid": iid,
                "token": request.headers.get("private-token"),
                "body": form["body"][0],
            }
        )
        return Response('{"id": 1}', status_code=201, media_type="application/json")


@pytest.mark.integration
@pytest.mark.parametrize("shell", ["bash", "sh"])
@pytest.mark.parametrize("gate_exit", [0, 1, 3], ids=["pass", "regressed", "infrastructure"])
def test_gitlab_job_posts_the_note_and_fails_with_the_gates_code(
    stand_ins: Path, gate_exit: int, shell: str
) -> None:
    api = NotesApi()
    lines = [line for line in gitlab_job()["script"] if not line.startswith("pip install")]
    # GitLab runs the script lines in one shell that stops at the first failing command.
    script = "set -e\n" + "\n".join(lines)
    with serve_in_thread(api.app) as base:
        env = _environment(
            stand_ins,
            gate_exit,
            CI_API_V4_URL=f"{base}/api/v4",
            CI_PROJECT_ID="5",
            CI_MERGE_REQUEST_IID="9",
            GATE_NOTES_TOKEN="glpat-notes",
            MONITOR_URL=URL,
            MONITOR_TOKEN=TOKEN,
        )
        done = subprocess.run(
            [shell, "-c", script],
            cwd=stand_ins / "work",
            env=env,
            capture_output=True,
            text=True,
            timeout=deadline(60),
        )
    assert done.returncode == gate_exit, done.stderr
    assert api.notes == [{"project": "5", "iid": "9", "token": "glpat-notes", "body": REPORT}]
    args = (stand_ins / "monitor-args").read_text().splitlines()
    assert set(flags(args)) <= set(GATE_FLAGS)
    assert args[args.index("--remote") + 1] == URL


@pytest.mark.integration
def test_gitlab_job_still_fails_with_the_gates_code_when_the_note_cannot_be_posted(
    stand_ins: Path,
) -> None:
    lines = [line for line in gitlab_job()["script"] if not line.startswith("pip install")]
    env = _environment(
        stand_ins,
        1,
        CI_API_V4_URL="http://127.0.0.1:9/api/v4",
        CI_PROJECT_ID="5",
        CI_MERGE_REQUEST_IID="9",
        GATE_NOTES_TOKEN="glpat-notes",
        MONITOR_URL=URL,
        MONITOR_TOKEN=TOKEN,
    )
    done = subprocess.run(
        ["bash", "-c", "set -e\n" + "\n".join(lines)],
        cwd=stand_ins / "work",
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(60),
    )
    assert done.returncode == 1
    assert "could not post the report to the merge request" in done.stdout


# The whole pipeline: PR gate (smoke), release gate (full), deploy, canary (it promotes)


def canary_flags() -> set[str]:
    from monitor.cli.canary import canary

    return {flag for param in canary.params for flag in param.opts if flag != "--help"}


def pipeline_scripts(path: Path) -> dict[str, str]:
    """Each job's shell (GitHub: the job's ``run`` steps; GitLab: the job's ``script``)."""
    loaded = yaml.safe_load(path.read_text())
    if path == GITHUB_PIPELINE:
        return {
            name: "\n".join(step["run"] for step in job["steps"] if "run" in step)
            for name, job in loaded["jobs"].items()
        }
    return {
        name: "\n".join(job["script"])
        for name, job in loaded.items()
        if isinstance(job, dict) and "script" in job
    }


@pytest.mark.parametrize("path", [GITHUB_PIPELINE, GITLAB_PIPELINE], ids=["github", "gitlab"])
def test_pipeline_commands_use_only_documented_flags(path: Path) -> None:
    scripts = "\n".join(pipeline_scripts(path).values())
    gates = gate_commands(scripts)
    [canary] = gate_commands(scripts, "canary")
    for command in gates:
        assert set(flags(command)) <= set(GATE_FLAGS), command
    assert set(flags(canary)) <= canary_flags(), canary
    assert {"--remote", "--stream-production", "--stream-candidate", "--duration"} <= set(
        flags(canary)
    )
    tiers = [c[c.index("--tier") + 1] for c in gates]
    assert sorted(tiers) == ["full", "smoke"]
    # The canary promotes itself: no gate promotes.
    assert not any("--promote-alias" in c for c in gates)
    expected = {"--promote-alias": "champion", "--model": "candidate", "--suite": "qa"}
    assert {flag: canary[canary.index(flag) + 1] for flag in expected} == expected
    assert canary[canary.index("-c") + 1] == "monitor.toml"


def _stage_calls(stand_in: Path) -> list[str]:
    calls = stand_in / "monitor-calls"
    lines = calls.read_text().splitlines() if calls.exists() else []
    stages = []
    for line in lines:
        words = line.split()
        if words[0] == "canary":
            stages.append("canary")
        else:
            stages.append("gate-" + words[words.index("--tier") + 1])
    return stages


# (the exit codes of the stages that run, the stages that run, the job's exit code)
RELEASE_CASES = [
    ([0, 0], ["gate-full", "canary"], 0),
    ([1], ["gate-full"], 1),
    ([3], ["gate-full"], 3),
    ([0, 1], ["gate-full", "canary"], 1),
    ([0, 3], ["gate-full", "canary"], 3),
    ([0, 2], ["gate-full", "canary"], 2),
]
RELEASE_IDS = [
    "promoted",
    "gate-regressed",
    "gate-infra",
    "rolled-back",
    "canary-infra-or-registry",
    "canary-usage",
]


@pytest.mark.integration
@pytest.mark.parametrize(("exits", "stages", "code"), RELEASE_CASES, ids=RELEASE_IDS)
def test_github_pipeline_release_stops_at_the_first_failing_stage(
    stand_ins: Path, exits: list[int], stages: list[str], code: int
) -> None:
    (stand_ins / "exits").write_text("".join(f"{e}\n" for e in exits))
    jobs = yaml.safe_load(GITHUB_PIPELINE.read_text())["jobs"]
    assert jobs["release"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    failed, last = GitHubRunner(stand_ins, 99).run(jobs["release"]["steps"])
    assert (failed, last) == (code != 0, code)
    assert _stage_calls(stand_ins) == stages
    assert (stand_ins / "monitor-token").read_text() == TOKEN


@pytest.mark.integration
@pytest.mark.parametrize("gate_exit", [0, 1, 3], ids=["pass", "regressed", "infrastructure"])
def test_github_pipeline_pr_gate_is_the_smoke_tier(stand_ins: Path, gate_exit: int) -> None:
    jobs = yaml.safe_load(GITHUB_PIPELINE.read_text())["jobs"]
    assert jobs["pr-gate"]["if"] == "github.event_name == 'pull_request'"
    failed, last = GitHubRunner(stand_ins, gate_exit).run(jobs["pr-gate"]["steps"])
    assert (failed, last) == (gate_exit != 0, gate_exit)
    assert _stage_calls(stand_ins) == ["gate-smoke"]
    args = (stand_ins / "monitor-args").read_text().splitlines()
    assert args[args.index("--remote") + 1] == URL


def _gitlab_pipeline(stand_in: Path, source: str) -> int:
    """Runs the jobs a pipeline of ``source`` (``tag`` or ``merge_request_event``) starts,
    stage by stage as GitLab does: each job's script in its own ``sh`` that stops at the
    first failing command, and no later stage after a failed job. The pipeline's code:
    the failed job's, else 0."""
    loaded = yaml.safe_load(GITLAB_PIPELINE.read_text())
    rule = "$CI_COMMIT_TAG" if source == "tag" else '$CI_PIPELINE_SOURCE == "merge_request_event"'
    env = _environment(stand_in, 99, MONITOR_URL=URL, MONITOR_TOKEN=TOKEN)
    for stage in loaded["stages"]:
        jobs = [
            job
            for job in loaded.values()
            if isinstance(job, dict) and job.get("stage") == stage
            if job["rules"] == [{"if": rule}]
        ]
        for job in jobs:
            lines = loaded["default"]["before_script"] + job["script"]
            lines = [line for line in lines if not line.startswith("pip install")]
            done = subprocess.run(
                ["sh", "-c", "set -e\n" + "\n".join(lines)],
                cwd=stand_in / "work",
                env=env,
                capture_output=True,
                text=True,
                timeout=deadline(60),
            )
            if done.returncode != 0:
                return done.returncode
    return 0


@pytest.mark.integration
@pytest.mark.parametrize(("exits", "stages", "code"), RELEASE_CASES, ids=RELEASE_IDS)
def test_gitlab_pipeline_tag_stops_at_the_first_failing_stage(
    stand_ins: Path, exits: list[int], stages: list[str], code: int
) -> None:
    (stand_ins / "exits").write_text("".join(f"{e}\n" for e in exits))
    assert _gitlab_pipeline(stand_ins, "tag") == code
    assert _stage_calls(stand_ins) == stages


@pytest.mark.integration
@pytest.mark.parametrize("gate_exit", [0, 1, 3], ids=["pass", "regressed", "infrastructure"])
def test_gitlab_pipeline_merge_request_runs_the_smoke_gate_only(
    stand_ins: Path, gate_exit: int
) -> None:
    (stand_ins / "exits").write_text(f"{gate_exit}\n")
    assert _gitlab_pipeline(stand_ins, "merge_request_event") == gate_exit
    assert _stage_calls(stand_ins) == ["gate-smoke"]
