"""`fope eval` refuses bad arguments before loading anything, naming the value."""

from __future__ import annotations

import pytest

from fope.cli import main


@pytest.mark.parametrize(
    "depths,message", [("abc", "'abc' is not uniform, grid"), ("0.5,2", "got 2.0"), (",", "in [0, 1]")]
)
def test_bad_depths_fail_before_the_model_loads(capsys, depths, message):
    with pytest.raises(SystemExit) as e:  # argparse: exit status 2
        main(["eval", "passkey", "--model", "/nonexistent/model", "--lengths", "8", "--depths", depths])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("fope eval passkey: error: argument --depths:") and message in err


def test_depths_parse():
    from fope.eval.cli import _depths

    assert _depths("uniform") == "uniform" and _depths("grid") == "grid"
    assert _depths("0,0.5,1") == [0.0, 0.5, 1.0]
