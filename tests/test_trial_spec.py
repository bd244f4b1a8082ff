"""nas-train RUN --trial N: any trial of a search run as the spec to train (what a close call names)."""
import json
import random

import pytest

from nas.cli.train import main as train_main
from nas.engine.job import Measurement
from nas.errors import UserInputError
from nas.retrain.config import TrainSettings
from nas.retrain.driver import resolve_spec
from nas.search.config import SearchConfig
from nas.search.run import open_run
from nas.search.run_files import append_trials, write_json
from nas.search.trial_record import trial_record
from search_spaces.mnasnet import MnasNetSpace
from search_spaces.spec import architecture_hash, load_spec

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray instance for the commands run in-process


@pytest.fixture
def search_run(tmp_path):
    """A search run directory as nas-search writes it: search.json and two trials (the files' own writers)."""
    run = tmp_path / "search"
    run.mkdir()
    config = SearchConfig.of(target_flops=400_000_000, out=str(run), resolution=96)
    write_json(run / "search.json", {"config": config.to_dict()})
    space = MnasNetSpace()
    rng = random.Random(0)
    records = []
    for trial, accuracy in ((0, 0.61), (1, 0.64)):
        choices = [rng.randrange(size) for size in space.sizes]
        spec = space.decode(choices, resolution=96, num_classes=10)
        measured = Measurement(accuracy=accuracy, flops=123_000_000 + trial, params=2_000_000, steps=300)
        records.append(trial_record(trial, f"t{trial}", choices, spec, measured, "trained", config.objective.score))
    append_trials(run / "trials.csv", records)
    return run, records


def trial_spec(run, trial):
    return open_run(run, "--trial").trial_spec(trial)


def test_a_trial_decodes_to_its_architecture_at_the_search_resolution(search_run):
    run, records = search_run
    spec = trial_spec(run, 1)
    decoded = MnasNetSpace().decode(records[1]["choices"], resolution=96, num_classes=1000)
    assert architecture_hash(spec) == architecture_hash(decoded)
    assert spec.resolution == 96 and spec.name == "search-trial-1"
    assert spec.metrics["proxy_accuracy"] == pytest.approx(0.64) and spec.metrics["flops"] == 123_000_001
    assert spec.provenance["trial"] == 1 and spec.provenance["choices"] == records[1]["choices"]
    assert architecture_hash(resolve_spec(str(run), 0)) == architecture_hash(trial_spec(run, 0))


def test_a_missing_trial_or_a_spec_file_with_trial_is_a_user_error(search_run, tmp_path):
    run, _ = search_run
    with pytest.raises(UserInputError, match=r"--trial 7: .* has no trial 7 \(trials 0\.\.1\)"):
        trial_spec(run, 7)
    spec_file = tmp_path / "b0.json"
    spec_file.write_text(json.dumps(MnasNetSpace().decode([0] * 42).to_dict()))
    with pytest.raises(UserInputError, match="is not a nas-search run directory"):
        resolve_spec(str(spec_file), 0)


def test_the_command_line_refuses_them_in_one_line(search_run, capsys):
    run, _ = search_run
    assert train_main([str(run), "--trial", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has no trial 9" in err and "Traceback" not in err
    assert train_main([str(run), "--trial", "-1"]) == 2
    assert "must be at least 0" in capsys.readouterr().err


def test_the_trial_is_kept_in_the_settings_and_older_ones_read_as_none():
    settings = TrainSettings(spec="runs/x", trial=3)
    assert TrainSettings.from_dict(settings.to_dict()).trial == 3
    older = {k: v for k, v in settings.to_dict().items() if k != "trial"}
    assert TrainSettings.from_dict(older).trial is None


def test_a_run_from_before_the_space_was_saved_decodes_with_mnasnets_space(search_run):
    """search.json without its space (older versions): the paper's space, whatever the default becomes."""
    from search_spaces.mnasnet import mnasnet_paper_config

    run, records = search_run
    saved = json.loads((run / "search.json").read_text())
    del saved["config"]["space"]
    write_json(run / "search.json", saved)
    opened = open_run(run)
    assert opened.space.config == mnasnet_paper_config() and len(opened.space) == 42
    assert architecture_hash(opened.trial_spec(1)) == architecture_hash(
        MnasNetSpace().decode(records[1]["choices"], resolution=96, num_classes=1000))


def test_nas_train_trains_the_named_trial_end_to_end(search_run, tmp_path):
    """``nas-train RUN --trial 1`` trains trial 1's architecture (not the run's best, not trial 0), decoded at the
    resolution asked for and the data's class count, and keeps the trial in its settings."""
    run, records = search_run
    out = tmp_path / "trained"
    assert train_main([str(run), "--trial", "1", "--data", "synthetic:classes=3,images=200", "--resolution", "16",
                       "--epochs", "1", "--batch-size", "16", "--cpus-per-worker", "1", "--out", str(out)]) == 0
    trained = load_spec(out / "spec.json")
    assert trained.block_strings == MnasNetSpace().decode(records[1]["choices"]).block_strings
    assert trained.block_strings != MnasNetSpace().decode(records[0]["choices"]).block_strings
    assert (trained.resolution, trained.num_classes, trained.provenance["trial"]) == (16, 3, 1)
    assert json.loads((out / "train.json").read_text())["trial"] == 1
    assert 0.0 <= json.loads((out / "result.json").read_text())["val_accuracy"] <= 1.0
