"""Lipophilicity predictions from Python through lipo's C API (bindings/python, ctypes).

    PYTHONPATH=bindings/python python3 examples/predict.py MODEL.lipo [SMILES ...]

SMILES come from the arguments, or standard input (one per line) when none are given.
"""

import sys

import lipo


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: predict.py MODEL.lipo [SMILES ...]")
    smiles = sys.argv[2:] or [line.split()[0] for line in sys.stdin if line.strip()]
    failed = False
    with lipo.Model(sys.argv[1]) as model:
        for s in smiles:
            try:
                print(f"{s}\t{model.predict(s):.6f}")
            except lipo.LipoError as e:
                print(f"{s}\terror ({e.status_name}): {e}", file=sys.stderr)
                failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
