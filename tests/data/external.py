#!/usr/bin/env python3
"""Builds robustness-check files from the public datasets in ../shared/external (train/val splits
only; never the test splits) into a temporary folder, and scores them with `esrbot eval`.
The sentences are read at run time and never copied into this repository.

    python3 tests/data/external.py            # needs a built release binary (cargo build --release)
"""
import csv, json, os, subprocess, sys, tempfile

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ext = os.path.join(root, "..", "shared", "external")
exe = os.path.join(root, "target", "release", "esrbot")
out = tempfile.mkdtemp(prefix="esrbot-external-")

def write(name, rows):
    path = os.path.join(out, name)
    with open(path, "w") as f:
        f.write("text\tintent\n")
        for text, intent in rows:
            f.write(" ".join(text.split()) + "\t" + intent + "\n")
    return path

clinc = json.load(open(os.path.join(ext, "clinc150", "data_full.json")))
# CLINC's own greeting/goodbye/thank_you intents are greetings and thanks for this bot too.
mapped = {"greeting": "greeting", "goodbye": "thanks", "thank_you": "thanks"}
files = {
    "CLINC150 oos_val (out of scope)": write("clinc_oos_val.tsv", [(t, "out_of_scope") for t, _ in clinc["oos_val"]]),
    "CLINC150 val, 150 assistant intents (out of scope but greetings/thanks)": write(
        "clinc_val.tsv", [(t, mapped.get(l, "out_of_scope")) for t, l in clinc["val"]]),
    "Banking77 train passcode_forgotten (bank-app passcodes, read as forgot_password)": write(
        "b77_forgot.tsv",
        [(r["text"], "forgot_password") for r in csv.DictReader(open(os.path.join(ext, "banking77", "train.csv")))
         if r["category"] == "passcode_forgotten"]),
}
for label, path in files.items():
    line = subprocess.run([exe, "eval", path], capture_output=True, text=True, cwd=root).stdout.strip().splitlines()[-1]
    print(f"{label}\n  {line}")
