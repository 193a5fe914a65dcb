"""Writes a PyTorch reference trajectory of nanoGPT's model and training step, for
examples/shakespeare/gpt's TestMatchesPyTorch.

The model and the step follow nanoGPT's model.py and train.py (bias-free GPT, tied head,
GPT-2 initialisation, AdamW decaying only tensors with two or more axes, global-norm clipping,
linear warm-up then cosine learning rate). The fixture holds a small model's initial weights,
the batches, and per step: learning rate, loss, gradient norms (global and per tensor) before
clipping; then the weights
after the last step. Needs PyTorch (pip install torch numpy); the Go test needs only the fixture.

    python scripts/reference/nanogpt_reference.py /work/shared/data/tinyshakespeare.txt \
        examples/shakespeare/gpt/testdata/nanogpt_reference.json
"""
import base64, json, math, sys

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F

CFG = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=4, steps=16,
           learning_rate=1e-2, min_lr=1e-3, warmup_iters=3, lr_decay_iters=12,
           weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, seed=7)
C = CFG


class LayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = nn.Linear(C['n_embd'], 3 * C['n_embd'], bias=False)
        self.c_proj = nn.Linear(C['n_embd'], C['n_embd'], bias=False)

    def forward(self, x):
        B, T, E = x.size()
        H = C['n_head']
        q, k, v = self.c_attn(x).split(E, dim=2)
        q, k, v = (t.view(B, T, H, E // H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(torch.tril(torch.ones(T, T)) == 0, float('-inf'))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, E))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = nn.Linear(C['n_embd'], 4 * C['n_embd'], bias=False)
        self.c_proj = nn.Linear(4 * C['n_embd'], C['n_embd'], bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp = LayerNorm(C['n_embd']), Attention(), LayerNorm(C['n_embd']), MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        E = C['n_embd']
        self.wte, self.wpe = nn.Embedding(vocab, E), nn.Embedding(C['block_size'], E)
        self.h = nn.ModuleList([Block() for _ in range(C['n_layer'])])
        self.ln_f = LayerNorm(E)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * C['n_layer']) if name.endswith('c_proj.weight') else 0.02
                torch.nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1)))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # head tied to the token embedding
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def get_lr(it):
    if it < C['warmup_iters']:
        return C['learning_rate'] * (it + 1) / (C['warmup_iters'] + 1)
    if it > C['lr_decay_iters']:
        return C['min_lr']
    r = (it - C['warmup_iters']) / (C['lr_decay_iters'] - C['warmup_iters'])
    return C['min_lr'] + 0.5 * (1.0 + math.cos(math.pi * r)) * (C['learning_rate'] - C['min_lr'])


def go_name(name):
    """Our variable scope for a PyTorch parameter name, and whether to transpose it ([in, out])."""
    parts = name.split('.')
    if parts[0] in ('wte', 'wpe'):
        return '/gpt/%s/weights' % parts[0], False
    if parts[0] == 'ln_f':
        return '/gpt/ln_f/gain', False
    layer, rest = parts[1], parts[2:]
    if rest[0].startswith('ln_'):
        return '/gpt/h%s/%s/gain' % (layer, rest[0]), False
    return '/gpt/h%s/%s/%s/weights' % (layer, rest[0], rest[1]), True


def weights(model):
    out = {}
    for name, p in model.named_parameters():
        scope, transpose = go_name(name)
        a = p.detach().numpy().astype('<f4')
        if transpose:
            a = a.T
        out[scope] = dict(shape=list(a.shape), data=base64.b64encode(np.ascontiguousarray(a).tobytes()).decode())
    return out


def main(data_path, out_path):
    text = open(data_path).read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    train = data[:int(len(data) * 0.9)]
    torch.manual_seed(C['seed'])
    model = GPT(len(chars))
    initial = weights(model)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    nodecay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': C['weight_decay']},
                             {'params': nodecay, 'weight_decay': 0.0}],
                            lr=C['learning_rate'], betas=(C['beta1'], C['beta2']), eps=1e-8)
    steps = []
    for it in range(C['steps']):
        ix = torch.randint(len(train) - C['block_size'], (C['batch_size'],))
        x = np.stack([train[i:i + C['block_size']] for i in ix])
        y = np.stack([train[i + 1:i + 1 + C['block_size']] for i in ix])
        lr = get_lr(it)
        for group in opt.param_groups:
            group['lr'] = lr
        loss = model(torch.from_numpy(x), torch.from_numpy(y))
        loss.backward()
        tensor_norms = {go_name(n)[0]: p.grad.norm().item() for n, p in model.named_parameters()}
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), C['grad_clip'])
        opt.step()
        opt.zero_grad(set_to_none=True)
        steps.append(dict(lr=lr, loss=loss.item(), grad_norm=norm.item(), tensor_grad_norms=tensor_norms,
                          x=x.flatten().tolist(), y=y.flatten().tolist()))
    clipped = sum(s['grad_norm'] > C['grad_clip'] for s in steps)
    assert 0 < clipped < len(steps), 'choose grad_clip so that some steps clip and some do not'
    fixture = dict(generator='scripts/reference/nanogpt_reference.py', torch=torch.__version__,
                   config=dict(C, vocab_size=len(chars)), initial=initial, steps=steps, final=weights(model))
    with open(out_path, 'w') as f:
        json.dump(fixture, f, indent=1)
        f.write('\n')
    print('%s: %d steps (%d clipped), loss %.4f -> %.4f' % (out_path, len(steps), clipped, steps[0]['loss'], steps[-1]['loss']))


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
