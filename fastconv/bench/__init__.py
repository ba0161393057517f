"""fastconv's benchmark suite: fastconv against PyTorch, side by side, on the layers of classic CNNs.

    python -m fastconv.bench --suite quick            # table on stdout, progress on stderr
    python -m fastconv.bench --suite full --layout both --json results.json --plot speedups.png

Layers live in zoo.json (data); zoo.py selects them, workloads.py builds data and calls, checks.py compares
fastconv with torch, runner.py times, probes.py measures the machine's peak, suite.py ties one case together,
report.py / plot.py present the results, __main__.py is the command line.
"""
