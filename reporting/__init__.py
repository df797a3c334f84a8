"""The report behind `report.py`, one question per module and no torch: the runs of a folder and their checks
(`records`, `groups`), the statistics (`stats`) and the one paired comparison (`compare`), sweeps and held-out choices
(`sweeps`), pre-registered contrasts (`contrasts`), seed replicates (`replicates`), a folder's table.md
(`folder_table`), the --SUMMARY tables (`summary`, `size_curve`, `carry_over`) and the answer a carry-over generates
(`answer`), the figures (`figures`) and their labels (`labels`). It reads run folders (`common.runs`) and never
imports the training."""
