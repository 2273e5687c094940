"""Optional backend: run the real Timeloop on naas_tl's inputs and read its figures back.

Timeloop is never required. `find_timeloop()` looks for pytimeloop's in-process model API
and for a `timeloop-model` binary on PATH; with neither it returns None and everything else
in naas_tl works as before.

* `parse_stats(text)` reads a `timeloop-model.stats.txt` into the dictionary
  `naas_tl.model.summary.to_json_dict` builds for naas_tl's own evaluator (the expected.json schema):
  cycles, energy, utilization, per level the per-instance reads/fills/updates per tensor and
  their totals, level energies (storage + temporal reduction + address generation + leakage,
  each printed by Timeloop to 0.01 pJ).
* `run_timeloop_model(case_files, workdir)` runs Timeloop as the reference cases were made:
  `timeloop-model arch.yaml problem.yaml map.yaml ERT.yaml ART.yaml` in `workdir`, and parses
  the stats file it writes there.
* `compare_results(ours, theirs)` lines the two dictionaries up metric by metric.
* `verify_design(out_dir, result)` re-runs every layer of a search's best design in Timeloop
  (`naas-tl search --verify-with timeloop`) and writes verify.json + a report.md section.
"""
from naas_tl.model.timeloop.run import NOT_FOUND, CASE_NAMES, BACKEND_ENV, Backend, find_timeloop, require_timeloop, case_files, run_timeloop_model
from naas_tl.model.timeloop.stats import STATS_FILE, COUNT_KEYS, parse_stats, parse_stats_file
from naas_tl.model.timeloop.compare import compare_results, format_comparison, format_timeloop_summary, rows_as_dicts, evaluate_cli
from naas_tl.model.timeloop.verify import verify_design, format_verify_section

__all__ = ["BACKEND_ENV", "Backend", "CASE_NAMES", "COUNT_KEYS", "NOT_FOUND", "STATS_FILE", "case_files", "compare_results", "evaluate_cli", "find_timeloop", "format_comparison", "format_timeloop_summary", "format_verify_section", "parse_stats", "parse_stats_file", "require_timeloop", "rows_as_dicts", "run_timeloop_model", "verify_design"]
