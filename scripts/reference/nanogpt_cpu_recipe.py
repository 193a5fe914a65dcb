"""nanoGPT's CPU recipe for tiny Shakespeare, in PyTorch: the baseline our `cpu` preset reproduces.

nanoGPT's README trains config/train_shakespeare_char.py on a CPU with --device=cpu --compile=False
--eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4
--n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0 and reports "a loss of only
1.88". This file is that run, written from nanoGPT's model.py and train.py semantics (same model,
initialisation, AdamW groups, schedule, clipping, torch.manual_seed(seed), batch sampling and
estimate_loss); with seed 1337 it prints nanoGPT's published final line (train 1.7648, val 1.8857)
on PyTorch 2.15 / x86-64.

    python scripts/reference/nanogpt_cpu_recipe.py --seed 1337

It prints one JSON line: the 20-batch losses at iteration 2000 (nanoGPT's figure) and 200-batch
losses of the same final model (a lower-variance estimate; batches from torch seed seed+100000).
"""
import argparse, json, math, os, sys, time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F



@dataclass(frozen=True)
class Shape:
    """The model's size (nanoGPT's GPTConfig without vocabulary, dropout and bias)."""
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int


def default_data():
    """tiny Shakespeare where the project keeps it: $SMI_DATA when set (the Makefile sets it), else the
    trainer's per-user cache ($XDG_CACHE_HOME or ~/.cache, smi-gomlx/tinyshakespeare.txt), which
    `make data` fills."""
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.environ.get('SMI_DATA') or os.path.join(cache, 'smi-gomlx', 'tinyshakespeare.txt')


CPU = Shape(n_layer=4, n_head=4, n_embd=128, block_size=64)
BATCH_SIZE = 12
LEARNING_RATE, MIN_LR, WARMUP_ITERS, WEIGHT_DECAY = 1e-3, 1e-4, 100, 0.1
BETA1, BETA2, GRAD_CLIP, EVAL_INTERVAL = 0.9, 0.99, 1.0, 250


class LayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_head, self.n_embd = c.n_head, c.n_embd
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=False)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=False)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=False)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp = LayerNorm(c.n_embd), Attention(c), LayerNorm(c.n_embd), MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab, c=CPU):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab, c.n_embd), wpe=nn.Embedding(c.block_size, c.n_embd),
            h=nn.ModuleList([Block(c) for _ in range(c.n_layer)]), ln_f=LayerNorm(c.n_embd)))
        self.lm_head = nn.Linear(c.n_embd, vocab, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith('c_proj.weight'):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.size(1)))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def get_lr(it, max_iters):
    if it < WARMUP_ITERS:
        return LEARNING_RATE * (it + 1) / (WARMUP_ITERS + 1)
    if it > max_iters:
        return MIN_LR
    ratio = (it - WARMUP_ITERS) / (max_iters - WARMUP_ITERS)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (LEARNING_RATE - MIN_LR)


def train(seed, data_path, max_iters=2000, eval_iters=20, log=sys.stderr):
    text = open(data_path).read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.uint16)
    n = int(0.9 * len(data))
    splits = dict(train=data[:n], val=data[n:])
    torch.manual_seed(seed)
    model = GPT(len(chars))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{'params': [p for p in params if p.dim() >= 2], 'weight_decay': WEIGHT_DECAY},
                             {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0}],
                            lr=LEARNING_RATE, betas=(BETA1, BETA2))

    def get_batch(split):
        d = splits[split]
        ix = torch.randint(len(d) - CPU.block_size, (BATCH_SIZE,))
        x = torch.stack([torch.from_numpy(d[i:i + CPU.block_size].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(d[i + 1:i + 1 + CPU.block_size].astype(np.int64)) for i in ix])
        return x, y

    @torch.no_grad()
    def estimate_loss(iters):
        model.eval()
        out = {split: float(torch.tensor([model(*get_batch(split)).item() for _ in range(iters)]).mean())
               for split in ('train', 'val')}
        model.train()
        return out

    X, Y = get_batch('train')
    # Training seconds leave the evaluations out, as ours do (examples/shakespeare times steps only).
    start, it, last, eval_seconds = time.time(), 0, None, 0.0
    while True:
        for group in opt.param_groups:
            group['lr'] = get_lr(it, max_iters)
        if it % EVAL_INTERVAL == 0 or it == max_iters:
            eval_start = time.time()
            last = estimate_loss(eval_iters)
            eval_seconds += time.time() - eval_start
            print(f"step {it}: train loss {last['train']:.4f}, val loss {last['val']:.4f}", file=log, flush=True)
        if it == max_iters:  # nanoGPT takes one more step after its last evaluation; it changes nothing reported
            break
        loss = model(X, Y)
        X, Y = get_batch('train')
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        it += 1
    seconds = time.time() - start - eval_seconds
    torch.manual_seed(seed + 100000)
    final = estimate_loss(200)
    return dict(seed=seed, torch=torch.__version__, threads=torch.get_num_threads(), train_seconds=seconds,
                train20=last['train'], val20=last['val'], train200=final['train'], val200=final['val'])


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seed', type=int, default=1337)
    p.add_argument('--data', default=default_data(), help='tiny Shakespeare (default: $SMI_DATA, else the per-user cache)')
    p.add_argument('--max_iters', type=int, default=2000)
    a = p.parse_args()
    print(json.dumps(train(a.seed, a.data, a.max_iters)))
