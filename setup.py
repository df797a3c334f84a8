from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent

setup(
    name="topological-collapse",
    version="0.1.0",
    description="Topological densification (Hofer et al., ICML 2020) and neural collapse (Papyan et al., PNAS 2020) "
                "on small-sample MNIST and SVHN",
    python_requires=">=3.10",
    # the design's modules at the root (every .py but this file) and the packages below it, found, not listed by hand
    py_modules=sorted(p.stem for p in HERE.glob("*.py") if p.name != "setup.py"),
    packages=find_packages(exclude=["tests", "tests.*"]),
    package_data={"": ["*.json", "README.md"]},  # the packages' data: splits/stratified_splits.json, read by every run
    install_requires=[
        "torch>=2.4,<3",      # fused SGD on CUDA
        "torchvision>=0.16",
        "numpy>=1.24",
        "scipy>=1.10",      # torchvision reads SVHN's .mat files with it; paired tests in the report
        "matplotlib>=3.7",
        "tqdm>=4.60",
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "giotto-ph>=0.2.2",  # independent persistence oracle in tests/test_regularizers.py
            "gudhi>=3.8",        # second oracle
            "ray>=2.9",          # tests/test_ray.py runs the Ray executor on a local instance
        ],
        "ray": ["ray>=2.9"],     # EXECUTOR=ray (training/ray_executor.py)
        "bench": ["torch-topological>=0.1.7", "giotto-ph>=0.2.2", "gudhi>=3.8"],  # benchmarks/bench_persistence.py
    },
)
