import json

import pandas as pd
import pytest

from search_spaces import REFERENCES
from nas.files import save_spec
from nas.cli.scale import main as scale_main
from nas.network.counting import profile
from nas.network.scaling import (PRESETS, ScalingError, coefficient_grid, compound, preset, round_filters, round_repeats,
                         scale_compound, scale_spec)
from search_spaces.spec import load_spec, spec_from_block_strings

pytestmark = pytest.mark.usefixtures("shared_ray")  # one Ray instance for the commands run in-process

# timm 1.0.31 efficientnet_b1..b7, no weights, 1000 classes, fvcore 0.1.5 at the preset resolution
TIMM = {
    "b1": (7_794_184, 708_623_088), "b2": (9_109_994, 1_021_308_768), "b3": (12_233_232, 1_874_915_424),
    "b4": (19_341_616, 4_492_947_056), "b5": (30_389_784, 10_464_477_712), "b6": (43_040_704, 19_402_938_992),
    "b7": (66_347_960, 38_326_538_880),
}


@pytest.mark.parametrize("name", sorted(TIMM))
def test_presets_match_timm(name, b0):
    params, flops = TIMM[name]
    scaled = preset(b0, name)
    assert scaled.resolution == PRESETS[name][2] and scaled.dropout == PRESETS[name][3]
    assert scaled.drop_connect == b0.drop_connect
    counts = profile(scaled, method="analytic")  # equal to fvcore exactly (tests/test_profile.py)
    assert counts["params"] == params
    assert abs(counts["flops"] - flops) <= 0.005 * flops


@pytest.mark.parametrize("name", ["b1", "b2"])
def test_presets_fvcore(name, b0):
    params, flops = TIMM[name]
    counts = profile(preset(b0, name))
    assert counts["params"] == params and abs(counts["flops"] - flops) <= 0.005 * flops


def test_a_preset_scales_a_small_baselines_resolution_by_the_tables_ratio(b0):
    """B0 searched for 64 px photos: its B3 runs at 64 x 300 / 224 = 86 px, not at the published 300 px (4.7x the
    photos' size); width and depth as published."""
    small = b0.replace(resolution=64)
    assert [preset(small, name).resolution for name in ("b0", "b1", "b3", "b7")] == [64, 69, 86, 171]
    assert preset(small, "b3").blocks == preset(b0, "b3").blocks


def test_rounding_edge_cases():
    assert round_filters(32, 1.0) == 32
    assert round_filters(32, 1.1) == 32  # 35.2 -> 32 (>= 90% of 35.2)
    assert round_filters(16, 1.4) == 24  # 22.4 -> 24
    assert round_filters(40, 1.1) == 48  # 44 -> 48 (halves up)
    assert round_filters(24, 1.1) == 24  # 26.4 -> 24 (>= 23.76)
    assert round_filters(320, 2.0) == 640 and round_filters(1280, 1.8) == 2304
    assert round_filters(4, 0.5) == 8  # never below the divisor
    assert round_filters(100, 1.0) == 104
    assert round_filters(12, 1.0) == 16  # 12 + 4 -> 16
    assert round_filters(20, 1.0, divisor=16) == 32  # 16 < 0.9 * 20 is false? 16 < 18 -> +16
    assert round_repeats(1, 1.1) == 2 and round_repeats(3, 1.0) == 3 and round_repeats(4, 3.1) == 13


def test_scale_spec_keeps_the_chain_valid(b0):
    scaled = scale_spec(b0, 1.3, 1.7, 288)
    assert scaled.stem_channels == scaled.blocks[0].in_channels
    assert all(a.out_channels == b.in_channels for a, b in zip(scaled.blocks, scaled.blocks[1:]))
    assert scaled.head_channels == round_filters(1280, 1.3)
    with pytest.raises(ScalingError, match="width"):
        scale_spec(b0, 0, 1, 224)
    with pytest.raises(ScalingError, match="resolution"):
        scale_spec(b0, 1, 1, 3)


def test_compound_formula(b0):
    depth, width, factor = compound(1.2, 1.1, 1.15, 2)
    assert depth == pytest.approx(1.44) and width == pytest.approx(1.21) and factor == pytest.approx(1.3225)
    assert scale_compound(b0, 1.2, 1.1, 1.15, 1).resolution == 258  # round(224 * 1.15): not B1's 240
    assert scale_compound(b0, 1.2, 1.1, 1.15, 0).blocks == b0.blocks
    with pytest.raises(ScalingError, match="beta: -1.1 must be a positive number"):
        compound(1.2, -1.1, 1.15, 1)


def test_grid_respects_the_constraint():
    grid = coefficient_grid(0.05, 0.05)
    assert grid and all(min(p) >= 1 and abs(p[0] * p[1] ** 2 * p[2] ** 2 - 2) <= 0.05 for p in grid)
    assert (1.2, 1.1, 1.15) not in coefficient_grid(0.05, 0.05)  # 1.92: outside a 0.05 tolerance
    assert (1.2, 1.1, 1.15) in coefficient_grid(0.05, 0.1)


def test_cli_preset_phi_manual_family(tmp_path, capsys):
    b0 = str(REFERENCES / "efficientnet_b0.json")
    assert scale_main([b0, "--preset", "b3", "--out", str(tmp_path / "b3.json")]) == 0
    assert load_spec(tmp_path / "b3.json").resolution == 300
    assert "12,233,232" in capsys.readouterr().out
    assert scale_main([b0, "--phi", "2", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15",
                       "--out", str(tmp_path / "phi2.json")]) == 0
    assert load_spec(tmp_path / "phi2.json").resolution == round(224 * 1.15 ** 2)
    assert scale_main([b0, "--width", "1.5", "--depth", "2", "--resolution", "320", "--out",
                       str(tmp_path / "m.json")]) == 0
    assert load_spec(tmp_path / "m.json").blocks[1].repeats == 4
    assert scale_main([b0, "--family", "--out", str(tmp_path / "family")]) == 0
    assert sorted(p.name for p in (tmp_path / "family").glob("*.json")) == [
        f"efficientnet-b{i}.json" for i in range(1, 8)]
    assert scale_main([b0, "--family", "--alpha", "1.2", "--out", str(tmp_path / "phis")]) == 0
    assert len(list((tmp_path / "phis").glob("*-phi*.json"))) == 7


@pytest.mark.parametrize("argv, words", [
    (["--preset", "b9"], "b9"),
    (["--phi", "1", "--alpha", "-1.2"], "--alpha"),
    (["--phi", "1", "--beta", "0"], "--beta"),
    (["--width", "1.2"], "go together"),
    (["--preset", "b1", "--phi", "1"], "choose one"),
    ([], "say how to scale"),
    (["--grid-search", "--grid-step", "0.0001"], "too fine a grid"),
    (["--grid-search", "--tolerance", "0"], "leave no point"),
    (["--grid-search", "--seed", "-1"], "--seed"),
])
def test_cli_bad_input(argv, words, capsys):
    assert scale_main([str(REFERENCES / "efficientnet_b0.json"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err


def test_cli_not_a_spec(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "something-else"}))
    assert scale_main([str(path), "--preset", "b1"]) == 2
    assert "format" in capsys.readouterr().err


def test_grid_search_end_to_end(tmp_path, capsys):
    tiny = spec_from_block_strings(["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e3_i16_o24_se0.25"], stem_channels=16,
                                   head_channels=64, num_classes=3, resolution=64, name="tiny-b0")
    base = tmp_path / "tiny.json"
    save_spec(tiny, base)
    out = tmp_path / "scaling"
    assert scale_main([str(base), "--grid-search", "--grid-step", "0.1", "--tolerance", "0.03",
                       "--data", "synthetic:classes=3,images=1000", "--proxy-resolution", "16", "--steps", "2",
                       "--batch-size", "16", "--out", str(out)]) == 0
    table = pd.read_csv(out / "scaling.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert ((table["product"] - 2).abs() <= 0.03).all()
    found = json.loads((out / "coefficients.json").read_text())
    assert found["accuracy"] == table["accuracy"].max()
    timing = pd.read_csv(out / "timings.csv")
    assert list(timing["stage"]) == ["grid search"] and list(timing["status"]) == ["finished"]
    assert timing.loc[0, "seconds"] > 0
    family = sorted(out.glob("tiny-phi*.json"))
    assert len(family) == 7 and load_spec(family[0]).resolution == round(64 * found["gamma"])
    assert list(table["proxy_resolution"]) == [round(16 * g) for g in table["gamma"]]  # trained at 16 px x γ
    assert (table["source"] == "trained").all() and found["budget"]["optimizer"] == "adamw"
    again = tmp_path / "again"  # the same proxy: every point served from the result cache, none trained
    assert scale_main([str(base), "--grid-search", "--grid-step", "0.1", "--tolerance", "0.03", "--no-family",
                       "--data", "synthetic:classes=3,images=1000", "--proxy-resolution", "16", "--steps", "2",
                       "--batch-size", "16", "--out", str(again)]) == 0
    cached = pd.read_csv(again / "scaling.csv")
    assert (cached["source"] == "cache").all() and list(cached["accuracy"]) == list(table["accuracy"])
    assert not (again / "ray").exists() and not list(again.glob("tiny-phi*.json"))


def test_default_outputs_are_named_after_the_network_beside_the_spec(tmp_path):
    import shutil

    spec = tmp_path / "best_b0.json"
    shutil.copy(REFERENCES / "efficientnet_b0.json", spec)  # network name "efficientnet-b0"
    assert scale_main([str(spec), "--preset", "b3"]) == 0
    assert scale_main([str(spec), "--family"]) == 0
    assert (tmp_path / "efficientnet-b3.json").is_file()
    assert sorted(p.name for p in (tmp_path / "efficientnet-family").iterdir()) == [
        f"efficientnet-b{i}.json" for i in range(1, 8)]


def test_a_grid_too_fine_or_too_large_to_train_is_refused():
    with pytest.raises(ScalingError, match="too fine a grid"):
        coefficient_grid(0.0005, 0.1)
    with pytest.raises(ScalingError, match="points with α·β²·γ² within 1 of 2, each a training"):
        coefficient_grid(0.01, 1.0)


def test_a_spec_name_that_leaves_its_folder_is_refused(tmp_path, capsys):
    """Scaled networks' files are named after the spec's name: '../../x' would write outside the folder."""
    folder = tmp_path / "a" / "b"
    spec = load_spec(REFERENCES / "efficientnet_b0.json").replace(name="../../escape-b0")
    save_spec(spec, folder / "best_b0.json")
    assert scale_main([str(folder / "best_b0.json"), "--preset", "b1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'../../escape-b0' is not a plain file name" in err
    assert sorted(p.name for p in tmp_path.rglob("*.json")) == ["best_b0.json"]  # nothing written anywhere
