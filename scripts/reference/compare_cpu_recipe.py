"""Compares our `cpu` preset, run 0 (AdamW alone), with nanoGPT's CPU recipe in PyTorch, seed by seed.

Both train the same model with the same recipe on the same machine (see nanogpt_cpu_recipe.py);
they cannot share random streams, so the comparison is between two samples of seeds: mean, 95%
confidence interval (Student t) and Welch's t-test, for the 20-batch validation loss at
iteration 2000 (nanoGPT's reported figure) and a 200-batch estimate on the same final model.
Writes a markdown report (default docs/NANOGPT_BASELINE.md). Each finished run is kept (PyTorch:
results/reference/nanogpt-seedS.json; ours: results/shakespeare/cpu-run0-seedS) with the key it was
made under: the code of its side (PyTorch: this directory's recipe and the torch version; ours: the
Go sources, as they are on disk) and the machine's CPU. An
interrupted comparison resumes where it stopped, reusing only runs whose key matches now, and says
on stdout which it reuses; a run made by other code or on another CPU is measured again (ours is
moved aside to cpu-run0-seedS.stale (or .stale-N), never deleted), so the speed ratio always pairs two runs of the
current code on this machine.

    make reference   # PyTorch in the virtual environment REF_VENV (default ~/.cache/smi-gomlx/reference-venv)

or by hand, with that environment (any other works as well):

    python3 -m venv "$REF_VENV" && "$REF_VENV/bin/pip" install torch numpy scipy
    "$REF_VENV/bin/python" scripts/reference/compare_cpu_recipe.py --seeds 1337,1,2,3,4,5,6,7
"""
import argparse, hashlib, json, math, os, platform, re, statistics, subprocess, sys, tempfile, time

from scipy import stats

# Names this invocation in the runs it makes, so the report can tell which pairs went back to back.
INVOCATION = '%s-%d' % (time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()), os.getpid())

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import nanogpt_cpu_recipe  # noqa: E402


def cpu_model():
    """The CPU as the Go programs describe it (package internal/machine): the first processor's model
    name in /proc/cpuinfo, then its x86 family, model and widest vector extension, e.g. "AMD EPYC
    (family 26, model 2; AVX-512)", since a VM's model name alone often hides the generation; else
    the platform's. It names the machine in the report and keys the kept runs, whose speeds only
    compare on one machine."""
    fields = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break  # the end of the first processor's block
                    continue
                k, sep, v = line.partition(':')
                if sep and k.strip() not in fields:
                    fields[k.strip()] = ' '.join(v.split())
    except OSError:
        return platform.processor() or platform.machine()
    name = fields.get('model name') or 'unknown CPU'
    details = ', '.join('%s %s' % (label, fields[k]) for k, label in (('cpu family', 'family'), ('model', 'model')) if fields.get(k))
    flags = fields.get('flags', '').split()
    widest = ''
    for flag, isa in (('sse4_2', 'SSE4.2'), ('avx', 'AVX'), ('avx2', 'AVX2'), ('avx512f', 'AVX-512')):
        if flag in flags:
            widest = isa
    part = '; '.join(x for x in (details, widest) if x)
    return '%s (%s)' % (name, part) if part else name


def home_as_tilde(text):
    """text with the user's home directory written as ~, as the Go programs write paths in what they
    publish (a run kept from before they did may still hold the full path)."""
    home = os.path.expanduser('~').rstrip('/')
    return text.replace(home + '/', '~/') if home else text


def torch_key():
    """What a kept PyTorch run depends on: this directory's recipe, the torch version and the CPU."""
    import torch
    with open(nanogpt_cpu_recipe.__file__, 'rb') as f:
        recipe = hashlib.sha256(f.read()).hexdigest()[:16]
    return dict(recipe=recipe, torch=torch.__version__, cpu=cpu_model())


def go_key():
    """What a kept run of ours depends on: the Go sources the trainer is built from (every tracked or
    untracked, not ignored .go file, go.mod and go.sum, as they are on disk: a change to the docs
    keeps the runs, a change to the code measures them again) and the CPU."""
    out = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', '*.go', 'go.mod', 'go.sum'],
                         cwd=ROOT, check=True, capture_output=True).stdout
    h = hashlib.sha256()
    for name in sorted(set(filter(None, out.decode().split('\0')))):
        path = os.path.join(ROOT, name)
        if os.path.exists(path):  # a tracked file deleted on disk is not built
            h.update(name.encode() + b'\0' + open(path, 'rb').read() + b'\0')
    return dict(go_sources=h.hexdigest()[:16], cpu=cpu_model())


def describe(key):
    """A key for messages; a run without one (made before keys, or by hand) says so."""
    return ', '.join('%s %s' % kv for kv in sorted(key.items())) if key else 'no key'


def torch_run(seed, data, key):
    path = os.path.join(ROOT, 'results', 'reference', f'nanogpt-seed{seed}.json')
    if os.path.exists(path):
        res = json.load(open(path))
        if res.get('key') == key:
            print(f'PyTorch nanoGPT, seed {seed}: reusing {os.path.relpath(path, ROOT)} (same recipe, torch and CPU)', flush=True)
            return res
        print(f'PyTorch nanoGPT, seed {seed}: {os.path.relpath(path, ROOT)} was made with '
              f'{describe(res.get("key"))}, not {describe(key)}: measuring it again', flush=True)
    print(f'PyTorch nanoGPT, seed {seed}...', flush=True)
    res = nanogpt_cpu_recipe.train(seed, data)
    res['key'], res['made_in'] = key, INVOCATION
    os.makedirs(os.path.dirname(path), exist_ok=True)
    json.dump(res, open(path, 'w'), indent=1)
    return res


def go_run(seed, data, binary, key):
    run_dir = os.path.join(ROOT, 'results', 'shakespeare', f'cpu-run0-seed{seed}')
    metrics = os.path.join(run_dir, 'metrics.json')
    key_file = os.path.join(run_dir, 'reference-key.json')
    kept = json.load(open(key_file)) if os.path.exists(key_file) else {}
    if os.path.exists(run_dir) and kept.get('key') != key:
        # Another code's run (or one begun by hand, without a key) is moved aside, never deleted: the
        # directory is also where `train -preset cpu -run 0 -seed S` keeps a user's own run. A run of
        # this code that was interrupted keeps its key and resumes from its checkpoint.
        stale, n = run_dir + '.stale', 1
        while os.path.exists(stale):  # an earlier one moved aside stays too
            n += 1
            stale = f'{run_dir}.stale-{n}'
        os.rename(run_dir, stale)
        print(f'Ours, seed {seed}: {os.path.relpath(run_dir, ROOT)} was made with '
              f'{describe(kept.get("key"))}, not {describe(key)}: moved to {os.path.relpath(stale, ROOT)}, '
              'measuring it again', flush=True)
        kept = {}
    if os.path.exists(metrics):
        print(f'Ours, seed {seed}: reusing {os.path.relpath(run_dir, ROOT)} (same code and CPU)', flush=True)
    else:
        print(f'Ours (GoMLX, XLA CPU), seed {seed}...', flush=True)
        if not kept:
            kept = dict(key=key, made_in=INVOCATION)
            os.makedirs(run_dir, exist_ok=True)
            json.dump(kept, open(key_file, 'w'), indent=1)
        subprocess.run([binary, 'train', '-preset', 'cpu', '-run', '0', '-seed', str(seed), '-quiet',
                        '-bench_tokens', '0', '-data', data, '-out', run_dir], check=True, cwd=ROOT)
    m = json.load(open(metrics))
    out = subprocess.run([binary, 'eval', '-out', run_dir, '-data', data, '-batches', '200'],
                         check=True, cwd=ROOT, capture_output=True, text=True).stdout
    val200 = float(re.search(r'^val\s+loss ([0-9.]+)', out, re.M).group(1))
    train200 = float(re.search(r'^train\s+loss ([0-9.]+)', out, re.M).group(1))
    return dict(seed=seed, made_in=kept['made_in'], train_seconds=m['train_seconds'], backend=m['backend'], train20=m['final_train_loss'],
                val20=m['final_val_loss'], train200=train200, val200=val200)


def summary(xs):
    n, mean = len(xs), statistics.fmean(xs)
    sd = statistics.stdev(xs) if n > 1 else float('nan')
    half = stats.t.ppf(0.975, n - 1) * sd / n ** 0.5 if n > 1 else float('nan')
    return mean, sd, half


def speed_lines(rows, goal):
    """Training speed, paired by seed: each seed's two runs ran on the same CPU (back to back when
    one invocation made both) and train the same tokens (2000 iterations x 12 x 64), so our tokens/s
    over nanoGPT's is nanoGPT's training seconds over ours. The interval is the t interval of the
    mean log ratio."""
    logs = [math.log(t['train_seconds'] / g['train_seconds']) for t, g in rows]
    mean, sd, half = summary(logs)
    ratio, lo, hi = math.exp(mean), math.exp(mean - half), math.exp(mean + half)
    if lo >= goal:
        verdict = '**met**'
    elif ratio >= goal:
        verdict = 'met by the geometric mean (interval reaches below)'
    elif hi >= goal:
        verdict = 'not met by the geometric mean (interval reaches above)'
    else:
        verdict = '**not met**'
    apart = sum(t.get('made_in') != g['made_in'] for t, g in rows)
    when = ('went back to back' if apart == 0 else
            'ran on this CPU (%d of the %d pairs were made by different invocations of this script, '
            'not back to back)' % (apart, len(rows)))
    return ['', '**Speed.** Each seed\'s two runs %s, so their ratio is paired; both train '
            'the same tokens, so our tokens/s over nanoGPT\'s is nanoGPT\'s training seconds over ours '
            '(geometric mean over seeds, 95%% t interval of the mean log ratio).' % when, '',
            '| goal | measured | verdict |', '|---|---|---|',
            '| our training tokens/s >= %.1fx nanoGPT\'s (PyTorch, same cores) | %.3fx [%.3f, %.3f] over %d seeds | %s |'
            % (goal, ratio, lo, hi, len(rows), verdict)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seeds', default='1337,1,2,3,4,5,6,7')
    p.add_argument('--data', default=nanogpt_cpu_recipe.default_data(),
                   help='tiny Shakespeare (default: $SMI_DATA, else the per-user cache that make data fills)')
    p.add_argument('--out', default=os.path.join(ROOT, 'docs', 'NANOGPT_BASELINE.md'))
    p.add_argument('--threshold', type=float, default=1.90, help="the issue's acceptance bound on the validation loss")
    p.add_argument('--speed_goal', type=float, default=1.2,
                   help="our goal for the training tokens/s as a multiple of nanoGPT's")
    a = p.parse_args()
    data = os.path.abspath(a.data)
    seeds = [int(s) for s in a.seeds.split(',')]
    binary = os.path.join(tempfile.mkdtemp(), 'shakespeare')
    subprocess.run(['go', 'build', '-o', binary, './examples/shakespeare'], check=True, cwd=ROOT)
    tkey, gkey = torch_key(), go_key()
    rows = []
    for seed in seeds:
        rows.append((torch_run(seed, data, tkey), go_run(seed, data, binary, gkey)))

    t0, g0 = rows[0]
    lines = [
        '# Our `cpu` preset against nanoGPT in PyTorch',
        '',
        'Generated by `python scripts/reference/compare_cpu_recipe.py --seeds %s` (PyTorch %s, %d threads; '
        'ours on %s) on %s (%s), %d CPUs. nanoGPT\'s README reports "a loss of only 1.88" for this recipe. '
        'Training seconds exclude evaluation; the runs went one after the other, on a machine that may have had other work.'
        % (a.seeds, t0['torch'], t0['threads'], home_as_tilde(g0['backend']), platform.node() or 'this machine', cpu_model(),
           os.cpu_count()),
        '',
        'Validation and training losses at iteration 2000: "20" is nanoGPT\'s estimate (20 random batches, as '
        'reported), "200" a 200-batch estimate of the same final model. Seeds cannot pair (different random '
        'generators), so the two columns are independent samples.',
        '',
        '| seed | nanoGPT val (20) | ours val (20) | nanoGPT val (200) | ours val (200) | nanoGPT train (200) | ours train (200) | nanoGPT s | ours s |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]
    for t, g in rows:
        lines.append('| %d | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.0f | %.0f |' % (
            t['seed'], t['val20'], g['val20'], t['val200'], g['val200'], t['train200'], g['train200'],
            t['train_seconds'], g['train_seconds']))
    lines += ['', '| statistic | nanoGPT (PyTorch) | ours (GoMLX) | difference, Welch p |', '|---|---:|---:|---:|']
    for key, label in (('val20', 'val loss, 20 batches'), ('val200', 'val loss, 200 batches'),
                       ('train200', 'train loss, 200 batches'), ('train_seconds', 'training seconds')):
        tx, gx = [t[key] for t, _ in rows], [g[key] for _, g in rows]
        (tm, tsd, th), (gm, gsd, gh) = summary(tx), summary(gx)
        pval = stats.ttest_ind(gx, tx, equal_var=False).pvalue if len(rows) > 1 else float('nan')
        f = '%.1f' if key == 'train_seconds' else '%.4f'
        row = '| %s, mean ± 95%% CI (sd) | {f} ± {f} ({f}) | {f} ± {f} ({f}) | %+{g}, p = %.2g |'.format(f=f, g=f[1:])
        lines.append(row % (label, tm, th, tsd, gm, gh, gsd, gm - tm, pval))
    for key in ('val20', 'val200'):
        lines.append('| %s <= %.2f | %d of %d seeds | %d of %d seeds | |' % (
            key.replace('val', 'val loss, ') + ' batches', a.threshold,
            sum(t[key] <= a.threshold for t, _ in rows), len(rows), sum(g[key] <= a.threshold for _, g in rows), len(rows)))
    lines += speed_lines(rows, a.speed_goal)
    with open(a.out, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    print('Report:', a.out)


if __name__ == '__main__':
    main()
