"""The CLI calls the same functions as the app and prints JSON for machines."""

import json

from vizcore.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_then_evaluate_reproduces_the_card(capsys):
    code, out, _ = run(capsys, "train", "--dataset", "digits", "--arch", "linear", "--epochs", "3", "--lr", "0.01",
                       "--name", "cli-lin", "--json")
    assert code == 0
    trained = json.loads(out)
    code, out, _ = run(capsys, "evaluate", "--model", "user:cli-lin", "--json")
    ev = json.loads(out)
    assert code == 0 and ev["accuracy"] == trained["accuracy"] == ev["card_accuracy"]
    assert [r["class"] for r in ev["per_class"]] == [str(i) for i in range(10)]
    code, out, _ = run(capsys, "zoo", "list", "--json")
    ids = [r["id"] for r in json.loads(out)]
    assert "user:cli-lin" in ids and "zoo:digits-cnn" in ids


def test_errors_are_messages_not_tracebacks(capsys):
    code, _, err = run(capsys, "evaluate", "--model", "nope")
    assert code == 2 and "no model 'nope'" in err
    code, _, err = run(capsys, "evaluate", "--model", "zoo:digits-linear", "--dataset", "yale-faces")
    assert code == 2 and "takes input [1, 8, 8]" in err


def test_data_list(capsys):
    code, out, _ = run(capsys, "data", "list", "--json")
    rows = {r["name"]: r["available"] for r in json.loads(out)}
    assert code == 0 and rows["digits"] is True and rows["yale-faces"] is True
