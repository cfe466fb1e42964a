import io

import numpy as np
from PIL import Image

from cascade.scenes import FRAME_SIZES, generate_scene
from natix_miner.tools.evaluate import build_cases, predict_in_process, score
from natix_miner.serving.scoring import ValidatorScore


def test_cases_are_balanced_cover_every_level_and_repeat_by_seed():
    cases = build_cases(80, seed=3, pipeline="v0.2")
    labels = [c.label for c in cases]
    assert 25 <= sum(labels) <= 55
    assert {c.level for c in cases} == {0, 1, 2, 3}
    assert [c.jpeg for c in build_cases(5, seed=3, pipeline="v0.2")] == [c.jpeg for c in cases[:5]]
    assert cases[0].jpeg[:2] == b"\xff\xd8"  # what validators send: JPEG


def test_cases_from_an_operator_folder(tmp_path):
    for label, folder in ((True, "roadwork"), (False, "none")):
        (tmp_path / folder).mkdir()
        for i in range(3):
            generate_scene(i, roadwork=label, size=(320, 240)).image.save(tmp_path / folder / f"{i}.png")
    cases = build_cases(12, seed=0, data=str(tmp_path))
    assert {c.label for c in cases} == {0, 1}
    assert score(cases, [(0.5, 0.0)] * 12).positives_without_roadwork is None  # only scenes know their roadwork


def test_report_counts_levels_and_replays_the_reward():
    cases = build_cases(40, seed=1, pipeline="v0.2")
    predictions = predict_in_process(cases, "cpu-default")
    report = score(cases, predictions)
    assert sum(report.count_by_level.values()) == 40 and report.unanswered == 0
    assert report.table().startswith("pipeline v0.2 (Jan 2026")
    replay = ValidatorScore()
    rewards = [replay.record(p, c.label) for (p, _), c in zip(predictions, cases)]
    assert report.mean_reward == np.mean(rewards) and report.final_reward == rewards[-1]
    decided = [int(round(p)) for p, _ in predictions]
    assert report.accuracy == np.mean([d == c.label for d, c in zip(decided, cases)])


def test_the_report_counts_positives_the_crop_emptied():
    cases = build_cases(60, seed=2, pipeline="v0.2")
    report = score(cases, [(float(c.label), 0.0) for c in cases])  # a perfect oracle of the labels
    emptied = sum(c.label == 1 and c.roadwork_pixels == 0 for c in cases)
    assert all((c.roadwork_pixels is None) == (c.label == 0) for c in cases)
    assert report.positives_without_roadwork == emptied
    assert f"accuracy ceiling {1 - emptied / 60:.3f}" in report.table()


def test_v04_cases_are_whole_frames_at_the_sizes_validators_send():
    cases = build_cases(16, seed=4)  # the default: what validators run since May 2026
    sizes = [Image.open(io.BytesIO(c.jpeg)).size for c in cases]
    assert set(sizes) <= set(FRAME_SIZES) and (1024, 1024) in sizes and any(w > h for w, h in sizes)
    assert {c.level for c in cases} == {None} and {c.pipeline for c in cases} == {"v0.4"}
    report = score(cases, [(float(c.label), 0.0) for c in cases])
    assert report.table().splitlines()[0].startswith("pipeline v0.4") and "level" not in report.table()


def test_a_pipeline_mix_draws_each_named_pipeline():
    cases = build_cases(30, seed=5, pipeline="v0.3=1,v0.2=1")
    assert {c.pipeline for c in cases} == {"v0.2", "v0.3"}
    assert {Image.open(io.BytesIO(c.jpeg)).size for c in cases} == {(224, 224)}


def test_a_cases_file_replays_the_same_challenges_and_refuses_others(tmp_path):
    import pytest

    from natix_miner.tools.evaluate import cached_cases

    path = tmp_path / "cases.json"
    built = cached_cases(path, 6, 2, "scenes", "all", "v0.3")
    assert cached_cases(path, 6, 2, "scenes", "all", "v0.3") == built == build_cases(6, 2, pipeline="v0.3")
    with pytest.raises(ValueError, match="another --cases-file"):
        cached_cases(path, 6, 2, "scenes", "all", "v0.4")
