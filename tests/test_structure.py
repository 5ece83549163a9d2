"""The package's shape: no import cycle between seqlib's modules (function-level imports included), and
the library outside ``seqlib/book/`` never imports the notebook stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from seqlib.provenance import REPO

PACKAGE = REPO / "seqlib"
NOTEBOOK_STACK = ("IPython", "papermill", "altair", "nbformat", "nbclient", "jupytext")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (annotations only: never run)."""
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None
        if test is not None and (getattr(test, "id", None) or getattr(test, "attr", None)) == "TYPE_CHECKING":
            yield from (n for orelse in node.orelse for n in [orelse, *runtime_nodes(orelse)])
            continue
        yield node
        yield from runtime_nodes(node)


def imported(path: Path) -> set[str]:
    """Every module a file imports at run time, anywhere in it (function-level imports included;
    absolute names, relative imports resolved)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names = set()
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import module`
    return names


def internal_edges() -> dict[str, set[str]]:
    """module -> the seqlib modules it imports. A package's ``__init__`` re-exporting its submodules is
    not an edge back into the package (importing ``seqlib.models.config`` runs ``seqlib.models``
    first anyway), so only edges between modules are kept, plus those of an ``__init__`` to modules
    outside its own package."""
    edges = {}
    for name, path in MODULES.items():
        targets = {t for t in imported(path) if t in MODULES and t != name}
        if path.name == "__init__.py":
            targets = {t for t in targets if not t.startswith(name + ".")}
        edges[name] = {t for t in targets if not (MODULES[t].name == "__init__.py" and name.startswith(t + "."))}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_in_seqlib():
    cycle = find_cycle(internal_edges())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_library_imports_no_notebook_stack():
    """Statically: no file outside seqlib/book names IPython, papermill, altair or nbformat."""
    offenders = {}
    for name, path in MODULES.items():
        if name.startswith("seqlib.book"):
            continue
        bad = sorted(m for m in imported(path) if m.split(".")[0] in NOTEBOOK_STACK)
        if bad:
            offenders[name] = bad
    assert not offenders, f"the library imports the notebook stack: {offenders}"


def test_importing_the_library_loads_no_notebook_stack():
    """At run time: importing every module outside seqlib/book leaves the notebook stack unloaded."""
    library = sorted(n for n in MODULES if not n.startswith("seqlib.book") and n != "seqlib.__main__")
    code = ("import importlib, sys\n"
            f"for m in {library!r}:\n    importlib.import_module(m)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {NOTEBOOK_STACK!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_grid_runner_loads_no_notebook_stack_until_it_executes_a_chapter():
    """``python -m seqlib.book.grid`` plans and trains without IPython or Altair (papermill is imported
    by the function that executes a chapter)."""
    code = ("import sys, seqlib.book.grid\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {NOTEBOOK_STACK!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_every_checkpoint_load_refuses_pickled_code():
    """``torch.load`` unpickles arbitrary objects unless ``weights_only=True``: every call says so."""
    unsafe = []
    for path in [*PACKAGE.rglob("*.py"), *(REPO / "chapters").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" \
                    and getattr(node.func.value, "id", None) == "torch":
                safe = any(k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords)
                if not safe:
                    unsafe.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"
