"""PyTorch-eager inference reference for `benches/speed.sh`: the same MoLFormer architecture
as src/model/molformer.rs (the classes of eager_reference.py), loaded with the weights of lipo
model folders (config.json + model.safetensors in Hugging Face names, lipo.json for the label
scale), predicting one molecule at a time without gradients:

    python benches/eager_predict.py DATA.csv MODEL_DIR [MODEL_DIR ...] [--limit 512]
        [--threads 1] [--out predictions.csv]

With several folders (an ensemble's members) a molecule's prediction is their mean, as in a
lipo ensemble bundle. SMILES are tokenised with MoLFormer's regex as written (no canonical
form). Prints molecules/s of the prediction loop; time the whole process from outside.
"""
import argparse, csv, json, re, struct, sys, time

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from eager_reference import PATTERN, Model  # noqa: E402


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    body = memoryview(raw)[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[a:b]), dtype=torch.float32).view(t["shape"])
    return out


def load(folder):
    cfg = json.load(open(f"{folder}/config.json"))
    meta = json.load(open(f"{folder}/lipo.json"))
    h, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    m = Model(cfg["vocab_size"], h, layers, cfg["num_attention_heads"],
              cfg["intermediate_size"], cfg["num_random_features"])
    w = read_safetensors(f"{folder}/model.safetensors")
    sd = {"emb.weight": w["molformer.embeddings.word_embeddings.weight"],
          "ln.weight": w["molformer.LayerNorm.weight"], "ln.bias": w["molformer.LayerNorm.bias"]}
    for i in range(layers):
        p = f"molformer.encoder.layer.{i}."
        for ours, theirs in [("q", "attention.self.query"), ("k", "attention.self.key"),
                             ("v", "attention.self.value"), ("o", "attention.output.dense"),
                             ("ln1", "attention.output.LayerNorm"), ("i", "intermediate.dense"),
                             ("out", "output.dense"), ("ln2", "output.LayerNorm")]:
            sd[f"layers.{i}.{ours}.weight"] = w[p + theirs + ".weight"]
            sd[f"layers.{i}.{ours}.bias"] = w[p + theirs + ".bias"]
        sd[f"layers.{i}.fm"] = w[p + "attention.self.feature_map.weight"]
    for ours, theirs in [("d1", "dense"), ("d2", "dense2"), ("outp", "out_proj")]:
        sd[f"{ours}.weight"] = w[f"classifier.{theirs}.weight"]
        sd[f"{ours}.bias"] = w[f"classifier.{theirs}.bias"]
    m.load_state_dict(sd)
    m.eval()
    return m, meta["label_mean"], meta["label_sd"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--limit", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--vocab", default="assets/vocab/molformer_vocab.txt")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    vocab = {t: i for i, t in enumerate(open(a.vocab).read().split("\n")) if t}
    rx = re.compile(PATTERN)
    rows = list(csv.DictReader(open(a.data)))[: a.limit]
    col = next(k for k in rows[0] if "smiles" in k.lower())
    seqs = [[0] + [vocab.get(t, 2361) for t in rx.findall(r[col])] + [1] for r in rows]
    members = [load(f) for f in a.models]
    preds = []
    t0 = time.time()
    with torch.no_grad():
        for s in seqs:
            ids = torch.tensor([s])
            mask = torch.ones_like(ids)
            ys = [float(m(ids, mask)) * sd + mean for m, mean, sd in members]
            preds.append(sum(ys) / len(ys))
    dt = time.time() - t0
    print(f"pytorch eager {torch.__version__}: {len(seqs) / dt:.1f} molecules/s at batch 1 "
          f"({len(seqs)} molecules, {len(members)} member(s), {dt:.2f} s, "
          f"{torch.get_num_threads()} threads)", file=sys.stderr)
    if a.out:
        with open(a.out, "w") as f:
            f.write("smiles,prediction\n")
            for r, p in zip(rows, preds):
                f.write(f"{r[col]},{p:.6f}\n")


if __name__ == "__main__":
    main()
