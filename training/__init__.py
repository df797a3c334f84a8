"""The machinery of a run, from the command line to final.json: overrides (`config`), the study's plan and executors
(`experiment`, `ray_executor`), one run's loop (`train`), its checkpoints and resume (`checkpoints`), what it measures
(`evaluation`) and where it trained (`provenance`). It uses the science at the repository's root (`data`, `models`,
`regularizers`, `collapse_metrics`) and `common`."""
