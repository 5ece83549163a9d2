"""The supply chain (store-and-grid issue, points 9 and 10): the Pages workflow pins its actions by
commit SHA, grants Pages and OIDC rights to the deploy job only, and installs with the constraints
file; ``make venv`` (and so CI) installs with the same file, which pins every package the
requirements pin, at the same version; ``pre-commit``, which the hooks need, is required."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
CONSTRAINTS = "constraints.txt"
REQUIREMENTS = sorted(REPO.glob("requirements*.txt"))
# torch comes from the Makefile's TORCH_VERSION (CPU wheel or CUDA build); the CUDA build of torch
# pins its own triton (2.13.0: triton==3.7.1), so a triton pin (requirements-cpu.txt's 3.9.0) in the
# constraints would make `make venv` impossible on a GPU machine
NOT_CONSTRAINED = {"torch", "triton"}
SHA = re.compile(r"^[0-9a-f]{40}$")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def norm(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements or constraints file (comments and blanks skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and (m := PIN.match(line)):
            out[norm(m[1])] = m[2]
    return out


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(norm(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0]))
    return names


def pip_installs(text: str) -> list[str]:
    """Every ``pip install`` command in shell text, up to the end of its command (;, &&, ||, newline),
    backslash continuations joined."""
    text = text.replace("\\\n", " ")
    return [m[0] for m in re.finditer(r"pip install[^;&|\n]*", text)]


def constrained(command: str) -> bool:
    return bool(re.search(rf"(^|\s)(-c|--constraint)(\s+|=){re.escape(CONSTRAINTS)}(\s|$)", command))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def venv_recipe() -> tuple[str, str]:
    """The ``$(VENV)/.installed`` rule of the Makefile: (its prerequisites, its recipe)."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$(VENV)/.installed:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line)
    return lines[start].partition(":")[2], "\n".join(recipe)


def test_there_is_a_workflow():
    assert WORKFLOWS, "no .github/workflows/*.yml"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_sha(path):
    uses = [step["uses"] for job in load(path)["jobs"].values() for step in job.get("steps", []) if "uses" in step]
    uses += [job["uses"] for job in load(path)["jobs"].values() if "uses" in job]  # reusable workflows
    assert uses
    for ref in uses:
        if ref.startswith("./"):
            continue  # an action of this repository: pinned by the checkout itself
        action, _, rev = ref.partition("@")
        assert SHA.match(rev), f"{path.name}: {ref} is not pinned to a 40-hex commit SHA"
    # the tag the SHA stands for is written beside it, so a reader (and an updater) can tell
    for line in path.read_text().splitlines():
        if re.match(r"\s*(-\s+)?uses:\s*[^.\s]", line):
            assert re.search(r"@[0-9a-f]{40}\s+#\s*v\d", line), f"{path.name}: no tag comment in {line.strip()!r}"


def test_pages_permissions_only_where_needed():
    workflow = load(REPO / ".github" / "workflows" / "pages.yml")
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert jobs["build"].get("permissions") == {"contents": "read"}
    deploy = jobs["deploy"].get("permissions") or {}
    assert deploy.get("pages") == "write" and deploy.get("id-token") == "write"
    for name, job in jobs.items():
        if name != "deploy":
            granted = job.get("permissions") or {}
            assert granted.get("pages", "none") == "none" and granted.get("id-token", "none") == "none", name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_pip_installs_use_the_constraints(path):
    runs = [step["run"] for job in load(path)["jobs"].values() for step in job.get("steps", []) if "run" in step]
    commands = [c for run in runs for c in pip_installs(run)]
    if path.name == "pages.yml":
        assert commands, "the Pages build installs the book toolchain"
    for command in commands:  # a --no-deps install (seqlib itself) resolves nothing
        assert "--no-deps" in command or constrained(command), f"{path.name}: {command!r} does not pass -c {CONSTRAINTS}"


def test_make_venv_installs_with_the_constraints():
    prerequisites, recipe = venv_recipe()
    assert CONSTRAINTS in prerequisites.split(), "a change of the constraints must re-run the install"
    commands = pip_installs(recipe)
    with_requirements = [c for c in commands if " -r " in c]
    assert len(with_requirements) >= 3, with_requirements  # requirements-cpu, requirements-gpu, requirements
    for command in commands:
        # --no-deps installs (the CPU torch wheel, seqlib itself) resolve nothing
        assert "--no-deps" in command or constrained(command), f"Makefile: {command!r} does not pass -c {CONSTRAINTS}"


def test_ci_runs_make_test():
    """CI installs through ``make test`` -> ``make venv``, hence with the same constraints."""
    assert re.search(r"^make test\b", (REPO / ".ci" / "run").read_text(), re.M)


def test_constraints_pin_what_the_requirements_pin():
    path = REPO / CONSTRAINTS
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for line in lines:
        assert PIN.match(line), f"{CONSTRAINTS}: {line!r} is not name==version"
    locked = pins(path)
    assert len(locked) == len(lines), "a package pinned twice"
    assert "make lock" in path.read_text(), "the header says how the file is regenerated"
    assert not locked.keys() & (NOT_CONSTRAINED | {"seqlib"}), "torch, triton and seqlib are not constrained"
    assert REQUIREMENTS
    for req in REQUIREMENTS:
        wanted = pins(req)
        for name in requirement_names(req) - NOT_CONSTRAINED:
            assert name in locked, f"{req.name}: {name} has no pin in {CONSTRAINTS}"
            if name in wanted:
                assert locked[name] == wanted[name], (
                    f"{req.name} pins {name}=={wanted[name]}, {CONSTRAINTS} {name}=={locked[name]}")


def test_requirement_files_agree():
    """A package pinned by two requirements files is pinned to one version."""
    seen: dict[str, tuple[str, str]] = {}
    for req in REQUIREMENTS:
        for name, version in pins(req).items():
            if name in seen:
                assert seen[name][1] == version, f"{name}: {seen[name][0]} and {req.name} disagree"
            seen[name] = (req.name, version)


def test_pre_commit_is_required():
    assert (REPO / ".pre-commit-config.yaml").exists()
    required = {name: version for req in REQUIREMENTS for name, version in pins(req).items()}
    assert "pre-commit" in required, "the hooks of .pre-commit-config.yaml need the pre-commit package"
    assert pins(REPO / CONSTRAINTS).get("pre-commit") == required["pre-commit"]


def test_make_lock_is_listed():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^lock:.*## ", makefile, re.M), "`make help` lists how the constraints are regenerated"
