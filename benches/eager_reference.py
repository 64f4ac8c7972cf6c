"""PyTorch-eager reference of lipo's MoLFormer (same architecture as src/model/molformer.rs),
used only to compare fine-tuning throughput on the same machine:

    python benches/eager_reference.py LIPOPHILICITY.csv [--layers 4 --hidden 256 --heads 8 --ff 256]

Trains one epoch of the regression head + encoder (Adam, MSE, batch 16) over the seed-0 train
split in lipo's length-bucketed batch order and prints molecules/s with the thread count.
"""
import argparse, csv, math, re, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

PATTERN = r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$|\%[0-9]{2}|[0-9])"


def rotary(t, d):
    inv = torch.exp(torch.arange(0, d, 2).float() / d * -math.log(10000.0))
    f = torch.outer(torch.arange(t).float(), inv)
    e = torch.cat([f, f], -1)
    return e.cos(), e.sin()


def rot_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class Layer(nn.Module):
    def __init__(s, h, heads, ff, m):
        super().__init__()
        s.q, s.k, s.v, s.o = (nn.Linear(h, h) for _ in range(4))
        s.ln1, s.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
        s.i, s.out = nn.Linear(h, ff), nn.Linear(ff, h)
        s.heads = heads
        s.register_buffer("fm", torch.randn(h // heads, m))
        s.drop = nn.Dropout(0.1)

    def forward(s, x, mask, cos, sin):
        b, t, h = x.shape
        d = h // s.heads
        sp = lambda y: y.view(b, t, s.heads, d).transpose(1, 2)
        q, k, v = sp(s.q(x)), sp(s.k(x)), sp(s.v(x))
        q = q * cos + rot_half(q) * sin
        k = k * cos + rot_half(k) * sin
        fq = F.relu(q @ s.fm)
        fk = F.relu(k @ s.fm) * mask.view(b, 1, t, 1)
        kv = fk.transpose(-2, -1) @ v
        n = (fq * fk.sum(-2, keepdim=True)).sum(-1, keepdim=True).clamp_min(1e-6)
        c = ((fq @ kv) / n).transpose(1, 2).reshape(b, t, h)
        a = s.ln1(s.drop(s.o(c)) + x)
        return s.ln2(s.drop(s.out(F.gelu(s.i(a)))) + a)


class Model(nn.Module):
    def __init__(s, vocab, h, layers, heads, ff, m=32):
        super().__init__()
        s.emb = nn.Embedding(vocab, h, padding_idx=2)
        s.layers = nn.ModuleList(Layer(h, heads, ff, m) for _ in range(layers))
        s.ln = nn.LayerNorm(h)
        s.d1, s.d2, s.outp = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, 1)
        s.heads = heads
        s.drop = nn.Dropout(0.2)
        s.hd = nn.Dropout(0.1)

    def forward(s, ids, mask):
        mask = mask.float()
        cos, sin = rotary(ids.shape[1], s.emb.embedding_dim // s.heads)
        x = s.drop(s.emb(ids))
        for l in s.layers:
            x = l(x, mask, cos, sin)
        x = s.ln(x)
        p = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1e-9)
        r = F.gelu(s.hd(s.d1(p))) + p
        r2 = F.gelu(s.hd(s.d2(r))) + r
        return s.outp(r2).squeeze(-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--ff", type=int, default=256)
    ap.add_argument("--vocab", default="assets/vocab/molformer_vocab.txt")
    ap.add_argument("--max-batches", type=int, default=0)
    a = ap.parse_args()
    vocab = {t: i for i, t in enumerate(open(a.vocab).read().split("\n")) if t}
    rx = re.compile(PATTERN)
    rows = list(csv.DictReader(open(a.data)))
    seqs = [[0] + [vocab.get(t, 2361) for t in rx.findall(r["smiles"])] + [1] for r in rows]
    ys = [float(r["exp"]) for r in rows]
    n_train = int(len(rows) * 0.8 * 0.9)
    order = sorted(range(n_train), key=lambda i: len(seqs[i]))
    batches = [order[i:i + 16] for i in range(0, len(order), 16)]
    if a.max_batches:
        batches = batches[: a.max_batches]
    torch.manual_seed(0)
    model = Model(len(vocab), a.hidden, a.layers, a.heads, a.ff)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    t0, n = time.time(), 0
    for b in batches:
        L = max(len(seqs[i]) for i in b)
        ids = torch.tensor([seqs[i] + [2] * (L - len(seqs[i])) for i in b])
        mask = (ids != 2).long()
        y = torch.tensor([ys[i] for i in b])
        loss = F.mse_loss(model(ids, mask), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        n += len(b)
    dt = time.time() - t0
    print(f"pytorch eager {torch.__version__}: {n / dt:.1f} molecules/s ({n} molecules, {dt:.1f} s, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
