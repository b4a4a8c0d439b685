"""Census of the hostile suite: every hostile input its tests check, and the outcome each must get.

``python -m tests.hostile.census`` lists and counts them; ``python -m tests.hostile.census --run`` also runs
``tests/hostile`` and counts, per input, whether every test that checks it passed: a correct result (expected
``ok``), a clean one-line error (expected ``fail``), or neither (a test checking it failed, was skipped or was not
collected; there must be none).

The rows are read from the tables the tests are parametrised over (``corpus.py``), so a case added there is counted
here; ``test_census.py`` checks that each test named here exists and that every test of the suite is either named
here or listed in :data:`NOT_PER_INPUT`.
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.hostile.corpus import (
    ANNOTATIONS,
    CLIP_TEMP_NAMES,
    FEATURE_DAMAGE,
    LABELS,
    MODEL_DAMAGE,
    NAMED_PATHS,
    PEER_BAD_MEMBERS,
    PEER_FORMATS,
    PEER_UNUSABLE,
    RESUME_CHANGES,
    STALE_PARTS,
    VIDEO_SPECS,
)

ROOT = Path(__file__).resolve().parents[2]
NOT_PER_INPUT = {  # tests of the suite that check no one hostile input (properties, server bounds, census)
    "test_properties.py": {"test_feature_file_of_arbitrary_bytes", "test_feature_file_of_arbitrary_arrays",
                           "test_peer_readers_on_arbitrary_arrays", "test_labels_csv_of_arbitrary_bytes",
                           "test_annotations_lists_csvs_and_manifests_of_arbitrary_content",
                           "test_ground_truth_npy_of_arbitrary_arrays", "test_model_config_of_arbitrary_json"},
    "test_hostile_web.py": {"test_request_folders_and_gradio_cache_stay_bounded", "test_hide_paths_and_prune_work",
                            "test_serve_removes_its_work_folder_on_shutdown",
                            "test_load_three_rounds_of_thirty_concurrent_mixed_uploads"},
    "test_train_eval.py": {"test_no_nan_in_json_when_validation_has_one_class"},
    "test_run_files.py": {"test_synth_videos_and_evidence_clips_follow_umask"},
    "test_census.py": {"test_census_names_every_test_of_the_suite", "test_readme_quotes_the_census"},
}


@dataclass(frozen=True)
class Row:
    """One hostile input: its group and id, the outcome it must get and the tests (pytest node ids) checking it."""

    group: str
    id: str
    expect: str  # "ok": a correct result | "fail": a clean one-line error naming it
    tests: tuple[str, ...]


def node(module: str, test: str, param: str | None = None) -> str:
    """The pytest node id of ``test`` in ``tests/hostile/MODULE.py`` (with its parameter id)."""
    return f"tests/hostile/{module}.py::{test}" + (f"[{param}]" if param is not None else "")


def _expect(code: int) -> str:
    return "ok" if code == 0 else "fail"


def _video_rows() -> list[Row]:
    """Each corpus video through `vad score`, `vad extract` and (uploadable ones) the web UI."""
    batch = (node("test_videos", "test_score_batch_is_clean"), node("test_videos", "test_extract_batch_is_clean"))
    rows = []
    for case_id, _name, expect, _why, _make, web in [("baseline", "", "ok", "", None, True), *VIDEO_SPECS]:
        tests = [node("test_videos", "test_score_each_input", case_id),
                 node("test_videos", "test_extract_each_input", case_id), *batch]
        if web:
            tests.append(node("test_hostile_web", "test_upload_each_input", case_id))
        rows.append(Row("video", case_id, expect, tuple(tests)))
    return rows


def rows() -> list[Row]:
    """Every hostile input the suite checks."""
    train_eval = "test_train_eval"
    named = tuple(node("test_videos", "test_paths_named_on_the_command_line_are_each_reported", c)
                  for c in ("score", "extract"))
    stale = tuple(node("test_run_files", "test_stale_temp_files_of_dead_runs_are_removed_and_modes_follow_umask", c)
                  for c in ("score", "extract", "train"))
    members = (node(train_eval, "test_peer_lists_with_bad_members_train_on_the_rest"),)
    peer_ok = "test_peer_formats_train_eval_score_with_defaults"
    copied = "test_copied_model_dir_finds_its_backbone_weights"
    clips = (node("test_run_files", "test_a_live_session_removes_only_its_own_dead_clips"),)
    return [
        *_video_rows(),
        *(Row("named path", c, "fail", named) for c in NAMED_PATHS),
        *(Row("output folder", f"resume-{c}", "ok",
              (node("test_videos", "test_resume_keys_on_video_model_and_settings", c),)) for c in RESUME_CHANGES),
        *(Row("output folder", f"temp-{c}", "ok", stale) for c in STALE_PARTS),
        *(Row("clip folder", name, "ok", clips) for name in CLIP_TEMP_NAMES),
        *(Row("feature dir", c, _expect(code), (node(train_eval, "test_damaged_feature_dirs", c),))
          for c, (code, _) in FEATURE_DAMAGE.items()),
        *(Row("peer features", c, "ok", (node(train_eval, peer_ok, c),)) for c in PEER_FORMATS),
        *(Row("peer features", f"member-{c}", "fail", members) for c in PEER_BAD_MEMBERS),
        *(Row("peer features", c, "fail", (node(train_eval, "test_unusable_peer_inputs", c),)) for c in PEER_UNUSABLE),
        *(Row("labels.csv", c, _expect(code), (node(train_eval, "test_labels_files", c),))
          for c, (_, code) in LABELS.items()),
        *(Row("annotations", c, _expect(code), (node(train_eval, "test_annotation_files", c),))
          for c, (_, code) in ANNOTATIONS.items()),
        *(Row("model dir", c, "fail", (node(train_eval, "test_damaged_model_dirs", c),)) for c in MODEL_DAMAGE),
        Row("model dir", "copied-elsewhere", "ok", (node(train_eval, copied),)),
    ]


class _Outcomes:
    """A pytest plugin noting which tests passed, and which failed or were skipped (in any phase)."""

    def __init__(self) -> None:
        self.passed: set[str] = set()
        self.bad: set[str] = set()

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" and report.passed:
            self.passed.add(report.nodeid)
        elif report.failed or report.skipped:
            self.bad.add(report.nodeid)


def outcome(row: Row, outcomes: _Outcomes) -> str:
    """``correct result``, ``clean error`` or ``neither``, from the outcomes of the tests checking ``row``."""
    if all(t in outcomes.passed and t not in outcomes.bad for t in row.tests):
        return "correct result" if row.expect == "ok" else "clean error"
    return "neither"


def main(argv: list[str]) -> int:
    """Print the census (and with ``--run``, run the suite and count outcomes); 1 if any input got neither."""
    table = rows()
    groups = Counter((r.group, r.expect) for r in table)
    print(f"{'group':<16}{'inputs':>7}{'ok':>5}{'fail':>6}")
    for group in dict.fromkeys(r.group for r in table):
        ok, fail = groups[group, "ok"], groups[group, "fail"]
        print(f"{group:<16}{ok + fail:>7}{ok:>5}{fail:>6}")
    ok, fail = sum(r.expect == "ok" for r in table), sum(r.expect == "fail" for r in table)
    print(f"{'total':<16}{len(table):>7}{ok:>5}{fail:>6}   (ok: a correct result; fail: a clean one-line error)")
    if "--run" not in argv:
        return 0
    import pytest

    outcomes = _Outcomes()
    code = pytest.main([str(ROOT / "tests" / "hostile"), "-q", "-p", "no:cacheprovider", f"--rootdir={ROOT}"],
                       plugins=[outcomes])
    counts = Counter(outcome(r, outcomes) for r in table)
    for r in table:
        if outcome(r, outcomes) == "neither":
            print(f"neither: {r.group} {r.id} (expected {r.expect}; checked by {', '.join(r.tests)})")
    print(f"census: {len(table)} hostile inputs: {counts['correct result']} correct result, "
          f"{counts['clean error']} clean error, {counts['neither']} neither (pytest exit {int(code)})")
    return 1 if counts["neither"] or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
