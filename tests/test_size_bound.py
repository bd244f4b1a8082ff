"""Every command that builds or runs a network bounds its size first: one line naming the size and the bound,
exit 2, never a machine eaten. Each command runs in a child process capped at 6 GiB of address space, so a
missing bound fails the test instead of the machine."""
import json
import resource
import subprocess
import sys

import pytest

from search_spaces.spec import load_spec

CAP = 6 * 2 ** 30


def _edited(edit):
    """EfficientNet-B0 with ``edit`` applied to its blocks (block strings and arch_def recomputed)."""
    data = load_spec("search_spaces/references/efficientnet_b0.json").to_dict()
    data.pop("block_strings"), data.pop("timm_arch_def")
    edit(data)
    return load_spec(data)


def _spec(tmp_path, name, edit):
    path = tmp_path / f"{name}.json"
    path.write_text(_edited(edit).to_json())
    return path


def _huge(data):  # a 4,096 px network with a 65,536-channel block: 2,734G FLOPs
    data["resolution"] = 4096
    data["blocks"][6]["out"] = 65536


def _wide(data):  # 232G parameters at 224 px
    data["blocks"][5]["out"] = 65536
    data["blocks"][6]["in"] = 65536


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def _run(module, argv, cwd):
    code = f"import sys; from nas.cli.{module} import main; sys.exit(main({argv!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300,
                          preexec_fn=_capped)


@pytest.mark.parametrize("module, argv, words", [
    ("profile", ["{huge}", "--latency"], "2,734G FLOPs at 4096 px: too large to run here (at most 200G)"),
    ("profile", ["{wide}", "--latency", "--resolution", "32"],
     "232.1G parameters: too large to build here (at most 1G"),
    ("profile", ["{huge}"], "2,734G FLOPs at 4096 px: too large to count with fvcore"),
    ("train", ["{huge}", "--epochs", "1"], "2,734G FLOPs at 4096 px: too large to run here"),
    ("train", ["{wide}", "--resolution", "32"], "232.1G parameters: too large to build here"),
    ("export", ["{wide}", "--onnx", "x.onnx"], "232.1G parameters: too large to build here"),
    ("search", ["--target-flops", "400M", "--space", "{space}"], "the space's largest network has"),
    ("latency_table", ["--out", "t.json", "--space", "{space}"], "the space's largest network has"),
])
def test_a_network_too_large_is_one_line_and_exit_2_before_anything_is_built(module, argv, words, tmp_path):
    import os

    from search_spaces.mnasnet import mnasnet_paper_config

    space = mnasnet_paper_config().to_dict()
    space["skeleton"]["channels"][-1] = 32768  # the space's largest network: 32G parameters
    (tmp_path / "space.json").write_text(json.dumps(space))
    paths = {"huge": _spec(tmp_path, "huge", _huge), "wide": _spec(tmp_path, "wide", _wide),
             "space": tmp_path / "space.json"}
    argv = [a.format(**paths) for a in argv]
    done = _run(module, argv, os.getcwd())
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and words in done.stderr and "Traceback" not in done.stderr


def test_the_size_figures_are_the_analytic_counts():
    from nas.network.counting import check_size, profile
    from search_spaces.spec import SpecError

    huge, wide = _edited(_huge), _edited(_wide)
    assert profile(huge, method="analytic")["flops"] == 2_733_621_189_120
    assert profile(wide, method="analytic")["params"] == 232_142_266_276
    with pytest.raises(SpecError, match="232.1G parameters"):
        from nas.network.builder import build_model

        build_model(wide)  # refused before a weight is allocated
    check_size(huge.replace(resolution=32), 32)  # the same network at 32 px is within the bound
    with pytest.raises(SpecError, match="too large to run here"):
        check_size(huge, 4096)
