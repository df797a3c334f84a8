"""The layout is the design: the science at the root, `common` below both sides, `training` above the science, the
report (`report.py` and `reporting`) beside it and torch-free; imports at the top only, no cycle, no arrow up."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "training", "reporting")
MODULES = {p.stem: p for p in sorted(ROOT.glob("*.py")) if p.name != "setup.py"} | {
    f"{pkg}.{p.stem}": p for pkg in PACKAGES for p in sorted((ROOT / pkg).glob("*.py")) if p.stem != "__init__"}
SCIENCE = ("data", "models", "regularizers", "collapse_metrics")  # the design's modules, at the root
# what each layer may import of this repository (besides itself): no arrow up, and the report never reaches training
ALLOWED = {"common": {"common"}, "science": {"common", "science"}, "reporting": {"common", "reporting"},
           "report": {"reporting", "common"}, "training": {"common", "science", "training", "report"},
           "entry": {"training"}}
OPTIONAL = {("training.ray_executor", "ray")}  # (module, what it may import inside a function): ray is optional


def layer(module: str) -> str:
    if module.split(".")[0] in PACKAGES:
        return module.split(".")[0]
    return "science" if module in SCIENCE else "report" if module == "report" else "entry"


def imported(node: ast.AST) -> list[str]:
    """The modules of this repository an import statement imports (`from common import runs` → common.runs)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif node.module and not node.level:
        names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module for a in node.names]
    else:
        names = []
    return [n for n in names if n in MODULES]


def imports(path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(the modules of this repository a module imports anywhere, [(line, top-level name) imported inside a
    function])."""
    tree = ast.parse(path.read_text(), str(path))
    inside = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside += [(n.lineno, (a.name if isinstance(n, ast.Import) else n.module or "").split(".")[0])
                       for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))
                       for a in (n.names if isinstance(n, ast.Import) else n.names[:1])]
    names = {m for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for m in imported(n)}
    return names, sorted(set(inside))


def test_a_listing_of_the_root_shows_the_design():
    root = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(root) <= 12, root
    assert {"mnist_top.py", "svhn_top.py", "data.py", "models.py", "regularizers.py", "collapse_metrics.py", "report.py",
            "setup.py"} <= set(root)
    assert all((ROOT / pkg / "__init__.py").read_text().startswith('"""') for pkg in PACKAGES)  # each says what it is


def test_no_module_imports_inside_a_function():
    found = [f"{m}:{line} imports {name}" for m, path in MODULES.items() for line, name in imports(path)[1]
             if (m, name) not in OPTIONAL]
    assert not found, "imports inside functions (move them to the top of the module):\n" + "\n".join(found)


def test_each_layer_imports_only_the_layers_below_it():
    wrong = [f"{m} ({layer(m)}) imports {n} ({layer(n)})" for m, p in MODULES.items() for n in imports(p)[0]
             if layer(n) not in ALLOWED[layer(m)]]
    assert not wrong, "\n".join(wrong)


def test_the_modules_import_each_other_without_a_cycle():
    graph = {m: sorted(imports(p)[0] - {m}) for m, p in MODULES.items()}
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


def test_the_report_and_everything_it_imports_need_no_torch():
    torch_free = ["report"] + [m for m in MODULES if layer(m) in ("reporting", "common")]
    code = f"import sys, {', '.join(torch_free)}; print([m for m in ('torch', 'torchvision') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
    assert len(torch_free) >= 20                                           # the report, its 14 modules, common's 5
