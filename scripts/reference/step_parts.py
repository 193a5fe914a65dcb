"""Times nanoGPT's training step in PyTorch by parts, one call per request, for `make bench`.

The model and optimizer are nanogpt_cpu_recipe.py's (nanoGPT's CPU recipe) at the size given on
the command line, on a fixed random batch. It reads one request per line on stdin and answers each
with one line, the seconds the call took (time.perf_counter around it), so smibench can interleave
these calls with its own, round by round, on the same cores:

    forward    the loss (training mode)
    backward   the loss and its gradients (zero_grad, forward, backward)
    step       a training step: forward, backward, global-norm clip at 1.0, AdamW update
    product F T I O
               one matrix product of a dense layer (nn.Linear, weight W: O x I) on T tokens, as
               its training step computes it: F is forward (x @ W.T), input (dy @ W) or weight
               (dy.T @ x); the tensors are made before the first call is timed

The first line it writes is a JSON object describing itself (torch version, threads).

    python scripts/reference/step_parts.py --n_layer 4 --n_head 4 --n_embd 128 --block_size 64 --batch_size 12
"""
import argparse, json, os, sys, time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nanogpt_cpu_recipe as recipe  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ('n_layer', 'n_head', 'n_embd', 'block_size', 'batch_size'):
        p.add_argument('--' + name, type=int, required=True)
    p.add_argument('--vocab', type=int, default=65)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: PyTorch default)')
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    shape = recipe.Shape(n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd, block_size=a.block_size)
    model = recipe.GPT(a.vocab, shape)
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW([{'params': [q for q in params if q.dim() >= 2], 'weight_decay': recipe.WEIGHT_DECAY},
                             {'params': [q for q in params if q.dim() < 2], 'weight_decay': 0.0}],
                            lr=recipe.LEARNING_RATE, betas=(recipe.BETA1, recipe.BETA2))
    x = torch.randint(a.vocab, (a.batch_size, a.block_size))
    y = torch.randint(a.vocab, (a.batch_size, a.block_size))

    def forward():
        model(x, y).item()

    def backward():
        opt.zero_grad(set_to_none=True)
        model(x, y).backward()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.GRAD_CLIP)
        opt.step()
        loss.item()

    calls = dict(forward=forward, backward=backward, step=step)
    products = {}

    def product(form, tokens, d_in, d_out):
        key = (form, tokens, d_in, d_out)
        if key not in products:
            g = torch.Generator().manual_seed(len(products))
            x, dy = torch.randn(tokens, d_in, generator=g), torch.randn(tokens, d_out, generator=g)
            w = torch.randn(d_out, d_in, generator=g)
            products[key] = dict(forward=lambda: x @ w.T, input=lambda: dy @ w, weight=lambda: dy.T @ x)[form]
        return products[key]

    print(json.dumps(dict(torch=torch.__version__, threads=torch.get_num_threads(),
                          params=sum(q.numel() for q in params))), flush=True)
    for line in sys.stdin:
        name = line.strip()
        words = name.split()
        if len(words) == 5 and words[0] == 'product' and words[1] in ('forward', 'input', 'weight'):
            call = product(words[1], *map(int, words[2:]))
        elif name in calls:
            call = calls[name]
        else:
            print(f'error: unknown request {name!r}', flush=True)
            continue
        t0 = time.perf_counter()
        call()
        print(f'{time.perf_counter() - t0:.9f}', flush=True)


if __name__ == '__main__':
    main()
