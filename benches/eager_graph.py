"""PyTorch-eager twin of lipo's graph model (src/graph/dmpnn.rs, the D-MPNN) for
`benches/speed.sh`: the same layers, loaded from lipo graph model folders (config.json with
"model_type": "dmpnn", model.safetensors, lipo.json for the label scale), predicting one
molecule at a time without gradients, on the molecule graphs lipo wrote with
`lipo bench --model MODEL --data DATA.csv --dump-graphs GRAPHS.safetensors` (lipo's own
features, so both sides compute the same numbers; the featurisation is not timed here, while
lipo's own timing includes it):

    python benches/eager_graph.py GRAPHS.safetensors MODEL_DIR [MODEL_DIR ...] [--limit 512]
        [--threads 1] [--out predictions.csv]

With several folders (an ensemble's members) a molecule's prediction is their mean. Prints
molecules/s of the prediction loop; time the whole process from outside.
"""
import argparse, json, struct, time

import torch

DTYPES = {"F32": torch.float32, "I64": torch.int64}


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    body = memoryview(raw)[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[a:b]), dtype=DTYPES[t["dtype"]]).view(t["shape"])
    return out


class Dmpnn(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        fa, fb, h = cfg["atom_features"], cfg["bond_features"], cfg["hidden"]
        self.depth, self.hidden, self.aggregation = cfg["depth"], h, cfg["aggregation"]
        self.w_i = torch.nn.Linear(fa + fb, h, bias=False)
        self.w_h = torch.nn.Linear(h, h, bias=False)
        self.w_o = torch.nn.Linear(fa + h, h)
        widths = [h] + [cfg["ffn_hidden"]] * (cfg["ffn_layers"] - 1) + [1]
        self.ffn = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:]))

    def forward(self, x, e, src, dst, rev):
        inp = self.w_i(torch.cat([x[src], e], 1))
        msg = torch.relu(inp)
        zeros = torch.zeros(x.shape[0], self.hidden)
        for _ in range(1, self.depth):
            into = zeros.index_add(0, dst, msg)
            msg = torch.relu(inp + self.w_h(into[src] - msg[rev]))
        atoms = torch.relu(self.w_o(torch.cat([x, zeros.index_add(0, dst, msg)], 1)))
        mol = atoms.sum(0, keepdim=True)
        if self.aggregation == "norm":
            mol = mol / 100.0
        elif self.aggregation == "mean":
            mol = mol / x.shape[0]
        for k, layer in enumerate(self.ffn):
            mol = layer(mol)
            if k + 1 < len(self.ffn):
                mol = torch.relu(mol)
        return mol[0, 0]


def load(folder):
    cfg = json.load(open(f"{folder}/config.json"))
    assert cfg["model_type"] == "dmpnn", folder
    meta = json.load(open(f"{folder}/lipo.json"))
    m = Dmpnn(cfg)
    m.load_state_dict(read_safetensors(f"{folder}/model.safetensors"))
    m.eval()
    return m, meta["label_mean"], meta["label_sd"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("graphs")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--limit", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = read_safetensors(a.graphs)
    members = [load(f) for f in a.models]
    ao, bo = g["atom_offsets"].tolist(), g["bond_offsets"].tolist()
    n = min(a.limit, len(ao) - 1)
    preds = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(n):
            x = g["atom_features"][ao[i]:ao[i + 1]]
            e = g["bond_features"][bo[i]:bo[i + 1]]
            src = g["bond_src"][bo[i]:bo[i + 1]]
            dst = g["bond_dst"][bo[i]:bo[i + 1]]
            rev = torch.arange(src.shape[0]) ^ 1
            ys = [m(x, e, src, dst, rev).item() * sd + mean for m, mean, sd in members]
            preds.append(sum(ys) / len(ys))
    dt = time.perf_counter() - t0
    print(f"{n} molecules in {dt:.3f} s: {n / dt:.1f} molecules/s ({len(members)} members)")
    if a.out:
        with open(a.out, "w") as f:
            f.write("prediction\n" + "".join(f"{p:.6f}\n" for p in preds))


if __name__ == "__main__":
    main()
