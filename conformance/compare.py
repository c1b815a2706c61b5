#!/usr/bin/env python3
"""Compare an Autobahn|Testsuite report with the expected results (stdlib only).

  compare.py check LABEL INDEX_JSON EXPECTED_JSON [AGENT]
      Prints every difference and one line
        LABEL: expected results matched (N cases[, flips seen: ...])
      or
        LABEL: K difference(s) from EXPECTED_JSON
      Exit 0 when matched, 1 on any difference, 2 on a tool error.

  compare.py bless INDEX_JSON EXPECTED_JSON [AGENT]
      Rewrites the "results" of EXPECTED_JSON from the report (keeps the
      other keys: description, excluded cases, allowed flips).

A difference is: a case missing from the report, a case not in the
expectation, or another behavior / behaviorClose. The only tolerated
difference is a behavior listed under "allowed_flips" for that case (for
instance 3.4: OK <-> NON-STRICT, which depends on how TCP segments the
fuzzer's frames), and only between passing verdicts.
"""
import json
import sys

PASS = ("OK", "NON-STRICT", "INFORMATIONAL")


def case_key(cid):
    return [int(p) if p.isdigit() else p for p in cid.split(".")]


def load_report(path, agent=None):
    with open(path) as f:
        data = json.load(f)
    if not data:
        raise SystemExit("%s: empty report" % path)
    if agent and agent in data:
        return data[agent]
    if len(data) == 1:
        return next(iter(data.values()))
    raise SystemExit("%s: several agents (%s); name one" % (path, ", ".join(sorted(data))))


def check(label, index, expected_path, agent=None):
    rep = load_report(index, agent)
    with open(expected_path) as f:
        exp = json.load(f)
    want = exp["results"]
    flips = exp.get("allowed_flips", {})
    diffs, seen = [], []
    for cid in sorted(set(want) | set(rep), key=case_key):
        if cid not in rep:
            diffs.append("%s: expected %s/%s, no result" % (cid, want[cid]["behavior"], want[cid]["behaviorClose"]))
            continue
        got = {"behavior": rep[cid]["behavior"], "behaviorClose": rep[cid]["behaviorClose"]}
        if cid not in want:
            diffs.append("%s: not expected, got %s/%s" % (cid, got["behavior"], got["behaviorClose"]))
            continue
        for field in ("behavior", "behaviorClose"):
            w, g = want[cid][field], got[field]
            if w == g:
                continue
            ok = set(flips.get(cid, {}).get(field, []))
            if w in ok and g in ok and g in PASS:
                seen.append("%s %s->%s" % (cid, w, g))
            else:
                diffs.append("%s: %s expected %s, got %s (remoteCloseCode=%s)"
                             % (cid, field, w, g, rep[cid].get("remoteCloseCode")))
    for d in diffs:
        print("  difference " + d)
    if diffs:
        print("%s: %d difference(s) from %s" % (label, len(diffs), expected_path))
        return 1
    print("%s: expected results matched (%d cases%s)"
          % (label, len(want), ", flips seen: " + ", ".join(seen) if seen else ""))
    return 0


def bless(index, expected_path, agent=None):
    rep = load_report(index, agent)
    try:
        with open(expected_path) as f:
            exp = json.load(f)
    except FileNotFoundError:
        exp = {}
    res = {}
    for cid in sorted(rep, key=case_key):
        res[cid] = {"behavior": rep[cid]["behavior"], "behaviorClose": rep[cid]["behaviorClose"]}
    exp["results"] = res
    # Keep the file stable and diffable: one case per line.
    lines = ["{"]
    keys = [k for k in exp if k != "results"]
    for k in keys:
        lines.append("  %s: %s," % (json.dumps(k), json.dumps(exp[k], sort_keys=True)))
    lines.append('  "results": {')
    items = list(res.items())
    for i, (cid, r) in enumerate(items):
        lines.append("    %s: %s%s" % (json.dumps(cid), json.dumps(r), "," if i + 1 < len(items) else ""))
    lines.append("  }")
    lines.append("}")
    with open(expected_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    bad = [c for c, r in res.items() if r["behavior"] not in PASS]
    print("wrote %s: %d cases%s" % (expected_path, len(res),
                                    ("; NOT PASSING: " + " ".join(bad)) if bad else ""))
    return 0


def main(argv):
    try:
        if len(argv) >= 5 and argv[1] == "check":
            return check(argv[2], argv[3], argv[4], argv[5] if len(argv) > 5 else None)
        if len(argv) >= 4 and argv[1] == "bless":
            return bless(argv[2], argv[3], argv[4] if len(argv) > 4 else None)
    except (OSError, ValueError, KeyError) as e:
        print("compare.py: %s" % e, file=sys.stderr)
        return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
