"""Writes a PyTorch reference trajectory of nanoGPT's model and training step, for
internal/gpt's TestMatchesPyTorch.

The model is nanogpt_cpu_recipe.py's (nanoGPT's model.py: bias-free GPT, tied head, GPT-2
initialisation) at a small size; the step is nanoGPT's train.py (AdamW decaying only tensors with
two or more axes, global-norm clipping, linear warm-up then cosine learning rate). The fixture
holds the initial weights, the batches, and per step: learning rate, loss, gradient norms (global
and per tensor) before clipping; then the weights after the last step. Needs PyTorch (pip install torch numpy); the Go test needs only the fixture.

    python scripts/reference/nanogpt_reference.py ~/.cache/smi-gomlx/tinyshakespeare.txt \
        internal/gpt/testdata/nanogpt_reference.json

(make reference runs it with the Makefile's data file, SMI_DATA or that cache.)
"""
import base64, json, math, os, sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nanogpt_cpu_recipe import GPT, Shape  # noqa: E402 (nanoGPT's model, shared with the whole-run reference)

CFG = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, batch_size=4, steps=16,
           learning_rate=1e-2, min_lr=1e-3, warmup_iters=3, lr_decay_iters=12,
           weight_decay=0.1, beta1=0.9, beta2=0.99, grad_clip=1.0, seed=7)
C = CFG


def get_lr(it):
    if it < C['warmup_iters']:
        return C['learning_rate'] * (it + 1) / (C['warmup_iters'] + 1)
    if it > C['lr_decay_iters']:
        return C['min_lr']
    r = (it - C['warmup_iters']) / (C['lr_decay_iters'] - C['warmup_iters'])
    return C['min_lr'] + 0.5 * (1.0 + math.cos(math.pi * r)) * (C['learning_rate'] - C['min_lr'])


def go_name(name):
    """Our variable scope for a PyTorch parameter name, and whether to transpose it ([in, out])."""
    parts = name.removeprefix('transformer.').split('.')
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
    model = GPT(len(chars), Shape(C['n_layer'], C['n_head'], C['n_embd'], C['block_size']))
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
