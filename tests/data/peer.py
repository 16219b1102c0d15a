#!/usr/bin/env python3
"""The simple peer from issue 9, measured side by side with esrbot on the same training examples:
scikit-learn TF-IDF (word 1-2-grams and character 3-5-grams within words, sublinear tf) and a
class-balanced linear SVM (LinearSVC, C=1), trained on every example in intents/ with
out_of_scope as one more class. It prints the peer's figures and esrbot's (`esrbot eval`) for each
file given, in the summary format of `esrbot eval`.

    pip install scikit-learn     # not needed by the bot or its tests
    cargo build --release
    python3 tests/data/peer.py tests/data/dev.tsv tests/data/dev2.tsv
"""
import glob, os, subprocess, sys, tomllib

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
texts, labels = [], []
for path in sorted(glob.glob(os.path.join(root, "intents", "*.toml"))):
    intent = tomllib.load(open(path, "rb"))
    texts += intent["examples"]
    labels += [intent["id"]] * len(intent["examples"])
peer = make_pipeline(
    make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True),
    ),
    LinearSVC(C=1.0, class_weight="balanced"),
).fit(texts, labels)

def rows(path):
    lines = open(path, encoding="utf-8").read().splitlines()[1:]
    pairs = [l.rsplit("\t", 1) for l in lines if "\t" in l]
    return [t for t, _ in pairs], [g.strip() for _, g in pairs]

exe = os.path.join(root, "target", "release", "esrbot")
for path in sys.argv[1:]:
    text, gold = rows(path)
    pred = peer.predict(text)
    oos = [p for p, g in zip(pred, gold) if g == "out_of_scope"]
    ins = [p for p, g in zip(pred, gold) if g != "out_of_scope"]
    accuracy = sum(p == g for p, g in zip(pred, gold)) / len(gold)
    accepted = sum(p != "out_of_scope" for p in oos) / max(len(oos), 1)
    declined = sum(p == "out_of_scope" for p in ins) / max(len(ins), 1)
    print(f"{path}\n  peer:   accuracy={accuracy:.4f} oos_false_accept={accepted:.4f} "
          f"in_scope_false_reject={declined:.4f} n={len(gold)}")
    ours = subprocess.run([exe, "eval", path], capture_output=True, text=True, cwd=root)
    print(f"  esrbot: {ours.stdout.strip().splitlines()[-1]}")
