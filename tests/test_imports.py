"""The modules of the repository root: imports at the top only, no cycle, and a report that needs no torch."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = {p.stem: p for p in sorted(ROOT.glob("*.py"))}
OPTIONAL = {("ray_executor", "ray")}  # (module, what it may import inside a function): ray is an optional dependency


def imported(node: ast.AST) -> list[str]:
    """The top-level package names an import statement imports (relative imports: none here)."""
    if isinstance(node, ast.Import):
        return [a.name.split(".")[0] for a in node.names]
    return [node.module.split(".")[0]] if node.module and not node.level else []


def imports(path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(the names a module imports anywhere, [(line, name) imported inside a function])."""
    tree = ast.parse(path.read_text(), str(path))
    names, inside = set(), []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside += [(n.lineno, name) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))
                       for name in imported(n)]
    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            names.update(imported(n))
    return names, sorted(set(inside))


def test_no_module_imports_inside_a_function():
    found = [f"{m}.py:{line} imports {name}" for m, path in MODULES.items() for line, name in imports(path)[1]
             if (m, name) not in OPTIONAL]
    assert not found, "imports inside functions (move them to the top of the module):\n" + "\n".join(found)


def test_the_modules_import_each_other_without_a_cycle():
    graph = {m: sorted(imports(p)[0] & set(MODULES) - {m}) for m, p in MODULES.items()}
    cycles, state = [], {}

    def visit(m, path):  # depth first; a module met again while on the path closes a cycle
        state[m] = "open"
        for n in graph[m]:
            if state.get(n) == "open":
                cycles.append(" → ".join(path[path.index(n):] + [n]))
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_report_and_its_modules_import_no_torch():
    for module in ("report", "records", "groups", "compare", "sweeps", "contrasts", "replicates", "folder_table",
                   "summary", "size_curve", "carry_over", "labels", "stats", "figures", "runs", "schedules", "constants",
                   "collapse_names"):
        code = f"import {module}, sys; sys.exit('torch' in sys.modules)"
        assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0, f"import {module} loads torch"
