import json
import subprocess
import sys

import pytest

from search_spaces import REFERENCES
from nas.cli.profile import main as profile_main

B0 = str(REFERENCES / "efficientnet_b0.json")


def test_table(capsys):
    assert profile_main([B0]) == 0
    out = capsys.readouterr().out
    assert "r2_k3_s22_e6_i16_o24_se0.25" in out and "24x56x56" in out
    assert "5,288,548" in out and "399,352,864" in out


def test_json_is_one_line(capsys):
    assert profile_main([B0, "--json", "--resolution", "240", "--method", "analytic"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    data = json.loads(out)
    assert set(data) == {"params", "flops", "resolution"} and data["resolution"] == 240


def _bad_spec(tmp_path, change):
    data = json.loads(open(B0).read())
    data.pop("block_strings"), data.pop("timm_arch_def")
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("make, words", [
    (lambda tmp: str(tmp / "missing.json"), "no such spec file"),
    (lambda tmp: (tmp / "x.json").write_text("{oops") and str(tmp / "x.json"), "not valid JSON"),
    (lambda tmp: _bad_spec(tmp, lambda d: d.update(format="other")), "format"),
    (lambda tmp: _bad_spec(tmp, lambda d: d["blocks"][2].update(kernel=4)), "blocks[2].kernel: 4"),
    (lambda tmp: _bad_spec(tmp, lambda d: d["blocks"][2].update(stride=3)), "blocks[2].stride: 3"),
    (lambda tmp: _bad_spec(tmp, lambda d: d["blocks"][4].update({"in": 81})), "blocks[4].in: 81"),
    (lambda tmp: _bad_spec(tmp, lambda d: d["blocks"][1].update(repeats=-2)), "blocks[1].repeats: -2"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, make, words):
    assert profile_main([make(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and words in captured.err and "Traceback" not in captured.err


def test_bad_option(capsys):
    assert profile_main([B0, "--resolution", "-5"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_console_script_no_traceback(tmp_path):
    """The installed command, as a user runs it."""
    result = subprocess.run([sys.executable, "-c", "import sys; from nas.cli.profile import main as profile_main; "
                             "sys.exit(profile_main())", str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("nas-profile: error:") and "Traceback" not in result.stderr
