"""Lipophilicity predictions from Python through lipo's C API (bindings/python, ctypes).

    PYTHONPATH=bindings/python python3 examples/predict.py [MODEL.lipo] [SMILES ...]

The first argument is the model when it names an existing file or folder or ends in .lipo;
otherwise the default bundle is used (LIPO_DEFAULT_BUNDLE, else lipo's shipped predictor).
SMILES come from the arguments, or standard input (one per line) when none are given. An
ensemble bundle adds "± sd" and "in domain" or "out of domain".
"""

import os
import sys

import lipo


def main():
    args = sys.argv[1:]
    path = args.pop(0) if args and (os.path.exists(args[0]) or args[0].endswith(".lipo")) else None
    smiles = args or [line.split()[0] for line in sys.stdin if line.strip()]
    failed = False
    try:
        model = lipo.Model(path)  # None: the default bundle
    except lipo.LipoError as e:
        print(f"cannot open {path or 'the default bundle'}: {e}", file=sys.stderr)
        sys.exit(2)
    with model:
        for s in smiles:
            try:
                p = model.predict_detail(s)
            except lipo.LipoError as e:
                print(f"{s}\terror ({e.status_name}): {e}", file=sys.stderr)
                failed = True
                continue
            if p.sd is None:
                print(f"{s}\t{p.value:.6f}")
            else:
                print(f"{s}\t{p.value:.6f} ± {p.sd:.6f}\t{'in' if p.in_domain else 'out of'} domain")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
