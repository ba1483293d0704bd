#!/usr/bin/env bash
# End-to-end test of the ironclad program on a small slice of Fashion-MNIST.
#   cli_test.sh IRONCLAD_EXE FASHION_MNIST_DIR
# Checks results (JSON on stdout), resuming, exit codes (2: command line, 1: run) and one-line error
# messages, and that failed runs leave no output file. Prints one line per failure; exits 1 if any.
set -u
exe=$1
data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect RC ARGS...: runs ironclad ARGS, stdout to $tmp/out, stderr to $tmp/err, and checks the exit status.
expect() {
    local want=$1
    shift
    "$exe" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "ironclad $* exited $rc, want $want"
        sed 's/^/    /' "$tmp/err"
        return 1
    fi
}

# expect_error RC PATTERN ARGS...: fails with RC and exactly one stderr line "ironclad: error: ...PATTERN...".
expect_error() {
    local want=$1 pattern=$2
    shift 2
    expect "$want" "$@" || return
    if [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q "^ironclad: error: .*$pattern" "$tmp/err"; then
        fail "ironclad $*: want one line 'ironclad: error: ...$pattern...', got:"
        sed 's/^/    /' "$tmp/err"
    fi
}

# check_json PYTHON_EXPR: the expression, evaluated with d = the JSON on stdout, must be true.
check_json() {
    python3 -c "import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$tmp/out" ||
        fail "JSON check failed: $1 on: $(head -c 600 "$tmp/out")"
}

ckpt=$tmp/r20.safetensors
train=(train --model resnet20 --data "$data" --limit 200 --batch 50 --out "$ckpt")

# models
expect 0 models --json &&
    check_json "[m['params'] for m in d['models'] if m['name'] == 'resnet20'] == [269722]"

# train one epoch, then resume for a second
expect 0 "${train[@]}" --epochs 1 --json &&
    check_json "d['resumed_after'] == 0 and len(d['epochs']) == 1 and 0 <= d['epochs'][0]['test_top1'] <= 100 and d['train_images'] == 200"
[ -f "$ckpt" ] || fail "train did not write $ckpt"
grep -q "^epoch 1/1 " "$tmp/err" || fail "no per-epoch line on stderr with --json"
expect 0 "${train[@]}" --epochs 2 &&
    { grep -q "resuming .* after epoch 1 of 2" "$tmp/out" || fail "second run did not say it resumes"; }
grep -q "^epoch 2/2 " "$tmp/out" || fail "the resumed run did not train epoch 2"
expect 0 "${train[@]}" --epochs 2 && { grep -q "nothing to do" "$tmp/out" || fail "a finished run trained again"; }
expect_error 2 "lr=0.1, this run asks for 0.05" "${train[@]}" --epochs 3 --lr 0.05

# eval: float and fixed point, JSON figures
expect 0 eval --model resnet20 --weights "$ckpt" --data "$data" --limit 200 --json &&
    check_json "0 <= d['top1'] <= 100 and d['top1'] <= d['top5'] <= 100 and d['loss'] > 0 and d['images'] == 200 and d['format'] == 'float'"
expect 0 eval --model resnet20 --weights "$ckpt" --data "$data" --limit 200 --format q7.8 --split train --json &&
    check_json "d['format'] == 'q7.8' and d['split'] == 'train' and d['images'] == 200"

# bad command lines: exit 2, nothing written
bad=$tmp/bad.safetensors
expect_error 2 "unknown model 'resnet21'" train --model resnet21 --data "$data" --epochs 1 --out "$bad"
expect_error 2 "epochs '-1': must be at least 1" train --model resnet20 --data "$data" --epochs -1 --out "$bad"
expect_error 2 "lr 'fast': expected a number" train --model resnet20 --data "$data" --epochs 1 --lr fast --out "$bad"
expect_error 2 "limit 5: .*below the 10 classes" train --model resnet20 --data "$data" --epochs 1 --limit 5 --out "$bad"
expect_error 2 "unknown option --epoch" train --model resnet20 --data "$data" --epoch 1 --out "$bad"
expect_error 2 "missing --out" train --model resnet20 --data "$data" --epochs 1
[ -e "$bad" ] || [ -e "$bad.train-state" ] && fail "a failed train left $bad behind"
ls "$tmp" | grep -q "\.tmp\." && fail "a temporary file was left in $tmp"
expect_error 2 "unknown number format 'q15.x'" eval --model resnet20 --weights "$ckpt" --data "$data" --format q15.x
expect_error 2 "unknown command 'evaluate'" evaluate
expect 2

# bad files: exit 1, naming the problem
expect_error 1 "missing.safetensors" eval --model resnet20 --weights "$tmp/missing.safetensors" --data "$data"
head -c 3000 "$ckpt" >"$tmp/truncated.safetensors"
expect_error 1 "truncated.safetensors" eval --model resnet20 --weights "$tmp/truncated.safetensors" --data "$data"
expect_error 1 "holds a resnet20, not a resnet32; .*layer1.3.conv1.weight: missing from the checkpoint" \
    eval --model resnet32 --weights "$ckpt" --data "$data"
# A 5-class head where the data has 10 classes: the first mismatched tensor is named with both shapes.
python3 - "$ckpt" "$tmp/five.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
out, buf = {'__metadata__': header['__metadata__']}, b''
for name in sorted(k for k in header if k != '__metadata__'):
    entry = header[name]
    begin, end = entry['data_offsets']
    chunk = data[begin:end]
    if name.startswith('linear.'):
        entry['shape'][0] = 5
        chunk = chunk[:len(chunk) // 2]
    entry['data_offsets'] = [len(buf), len(buf) + len(chunk)]
    out[name], buf = entry, buf + chunk
text = json.dumps(out).encode()
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(text)) + text + buf)
PY
expect_error 1 "2 problem(s): linear.weight: checkpoint has \\[5,64\\], model expects \\[10,64\\]" \
    eval --model resnet20 --weights "$tmp/five.safetensors" --data "$data"
expect_error 1 "no-such-dir" eval --model resnet20 --weights "$ckpt" --data "$tmp/no-such-dir"

# fault campaigns: JSON/CSV/SVG results, reproducible, resumable, replayable
inj=(inject --model resnet20 --weights "$ckpt" --data "$data" --limit 100 --batch 50 --rate 0,1e-5 --trials 4 --seed 7)
expect 0 "${inj[@]}" --json "$tmp/inj.json" --csv "$tmp/inj.csv" --plot "$tmp/inj.svg" &&
    { cp "$tmp/inj.json" "$tmp/out"; check_json "d['images'] == 100 and d['fault_model']['format'] == 'q15.16' and d['engine']['version'] and len(d['results']) == 2 and d['results'][0]['sdc_rate'] == 0 and d['results'][0]['golden_reused_trials'] == 4 and d['results'][1]['trials'] == 4 and d['results'][1]['mean_faults'] > 0 and d['results'][1]['ci95_low'] <= d['results'][1]['mean_top1'] <= d['results'][1]['ci95_high']"; }
[ "$(wc -l < "$tmp/inj.csv")" -eq 3 ] || fail "inject --csv: expected a header and 2 rows"
grep -q "^<svg" "$tmp/inj.svg" || fail "inject --plot wrote no SVG"
[ -f "$tmp/inj.json.state" ] || fail "inject --json kept no state file"
cp "$tmp/inj.json" "$tmp/inj-first.json"
expect 0 "${inj[@]}" --json "$tmp/inj.json" --threads 1 &&
    python3 -c "import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); sys.exit(0 if [r['per_trial_top1'] for r in a['results']]==[r['per_trial_top1'] for r in b['results']] else 1)" \
        "$tmp/inj-first.json" "$tmp/inj.json" || fail "inject: a rerun (resumed, 1 thread) changed the per-trial results"
rm -f "$tmp/inj.json.state"
expect 0 "${inj[@]}" --threads 1 --json "$tmp/inj.json" &&
    python3 -c "import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); sys.exit(0 if [r['per_trial_top1'] for r in a['results']]==[r['per_trial_top1'] for r in b['results']] else 1)" \
        "$tmp/inj-first.json" "$tmp/inj.json" || fail "inject: 1 thread from scratch gave other results than 2 threads"
expect 0 inject --model resnet20 --weights "$ckpt" --data "$data" --limit 100 --flips 3 --trials 2 --replay 1 &&
    { [ "$(grep -c 'weight' "$tmp/out")" -ge 1 ] && [ "$(grep -cE '^(conv1|layer|linear)' "$tmp/out")" -eq 3 ] || fail "inject --replay did not list 3 fault records"; }
expect 0 "${inj[@]}" --site activations --format float --rate 1e-6 --bits exponent --layer-map --map-trials 2 --json "$tmp/act.json" &&
    { cp "$tmp/act.json" "$tmp/out"; check_json "d['fault_model']['site'] == 'activations' and d['fault_model']['bits'] == [23, 30] and len(d['layer_map']) > 10"; }
expect_error 2 "unknown storage format 'q15'" "${inj[@]}" --format q15
expect_error 2 "rate '2': every rate must be in \\[0, 1\\]" inject --model resnet20 --weights "$ckpt" --data "$data" --rate 2
expect_error 2 "give exactly one of --rate and --flips" inject --model resnet20 --weights "$ckpt" --data "$data"
expect_error 2 "bits '30-40': must lie within 0-31" "${inj[@]}" --bits 30-40
expect_error 2 "'layer9' names no" "${inj[@]}" --layers layer9
expect_error 2 "count mode 'reference' is the toolbox's weight-fault rule" "${inj[@]}" --count-mode reference --site both
expect_error 2 "--arith exact needs a fixed-point format" "${inj[@]}" --arith exact --format float
expect_error 2 "--accumulator applies to --arith exact only" "${inj[@]}" --accumulator 40
expect_error 2 "accumulator '12': .*must be 32" "${inj[@]}" --arith exact --accumulator 12

# --version equals the project version in meson.build
expect 0 --version && {
    want=$(sed -n "s/^  version : '\(.*\)',$/\1/p" "$(dirname "$data")/../meson.build")
    [ -n "$want" ] && grep -qx "ironclad $want" "$tmp/out" || fail "--version does not print meson.build's version '$want'"
}

# the embedded default: the CIFAR-10 checkpoint on the 1,000-image JPEG subset, and the toolbox's collapse at 1e-6
emb=$(dirname "$data")/resnet20-cifar10-jpg.safetensors
mini=$(dirname "$data")/cifar10-mini
expect 0 eval --model resnet20 --weights "$emb" --data "$mini" --json &&
    check_json "d['images'] == 1000 and d['top1'] >= 85"
expect 0 inject --model resnet20 --weights "$emb" --data "$mini" --limit 200 --count-mode reference --rate 1e-6 --trials 5 --json "$tmp/ref.json" &&
    { cp "$tmp/ref.json" "$tmp/out"; check_json "d['results'][0]['mean_faults'] == 5 and d['results'][0]['mean_top1'] < d['top1'] - 20"; }
# exact integer arithmetic: Q15.16 keeps the float accuracy; a narrow accumulator overflows and says where
expect 0 eval --model resnet20 --weights "$emb" --data "$mini" --limit 200 --format q15.16 --arith exact --json &&
    check_json "d['arith']['mode'] == 'exact' and d['top1'] >= 85 and d['saturation'] == {}"
expect 0 eval --model resnet20 --weights "$emb" --data "$mini" --limit 100 --format q7.8 --arith exact --accumulator 20-sat --json &&
    check_json "d['saturation']['conv1']['accumulator'] > 0"
expect 0 inject --model resnet20 --weights "$emb" --data "$mini" --limit 100 --arith exact --count-mode reference --rate 1e-6 --trials 2 --json "$tmp/exact.json" &&
    { cp "$tmp/exact.json" "$tmp/out"; check_json "d['arith']['accumulator'] == '64-sat' and d['results'][0]['mean_faults'] == 5 and 'saturation_per_trial' in d['results'][0]"; }
# int8 activations with calibrated scales
expect 0 inject --model resnet20 --weights "$emb" --data "$mini" --limit 100 --format int8-channel --site activations --rate 1e-4 --trials 2 --json "$tmp/int8.json" &&
    { cp "$tmp/int8.json" "$tmp/out"; check_json "d['quantized_activations'] and d['results'][0]['mean_faults'] > 100"; }
expect_error 1 "has a test/ image folder but no train/ folder" train --model resnet20 --data "$mini" --epochs 1 --out "$bad"

# attacks on the embedded CIFAR-10 checkpoint: JSON with the threat model, accuracy never rises, clear errors
atk=(attack --model resnet20 --weights "$emb" --data "$mini" --limit 20)
expect 0 "${atk[@]}" --attack pgd --eps 2/255 --steps 2 --json "$tmp/pgd.json" &&
    { cp "$tmp/pgd.json" "$tmp/out"; check_json "d['images'] == 20 and len(d['per_image']) == 20 and d['robust_top1'] <= d['clean_top1'] and abs(d['attack']['threat_model']['eps_x255'] - 2) < 1e-4 and d['attack']['threat_model']['steps'] == 2 and all(p['linf'] <= 2 / 255 + 1e-6 for p in d['per_image'])"; }
expect 0 "${atk[@]}" --attack fgsm --eps 1/255 --save-adv "$tmp/adv" && [ -f "$tmp/adv/adversarial.safetensors" ] ||
    fail "attack --save-adv did not write adversarial.safetensors"
expect_error 2 "eps '8': is above 1" "${atk[@]}" --eps 8
expect_error 2 "eps '-1/255': must not be negative" "${atk[@]}" --eps -1/255
expect_error 2 "attack 'cw': unknown attack" "${atk[@]}" --attack cw
expect_error 2 "steps does not apply to --attack fgsm" "${atk[@]}" --attack fgsm --steps 3
# the attack x fault grid at eps 0 is the plain campaign
expect 0 inject --model resnet20 --weights "$emb" --data "$mini" --limit 20 --rate 1e-5 --trials 3 --seed 4 --json "$tmp/plain.json"
expect 0 grid --model resnet20 --weights "$emb" --data "$mini" --limit 20 --eps 0,2/255 --steps 2 --rate 1e-5 --trials 3 \
    --fault-seed 4 --json "$tmp/grid.json" --plot "$tmp/grid.svg" &&
    python3 -c "import json, sys; g, p = (json.load(open(f)) for f in sys.argv[1:]); r = g['rows'][0]['results'][0]; sys.exit(0 if r['mean_top1'] == p['results'][0]['mean_top1'] and g['rows'][0]['robust_top1'] == p['top1'] and g['rows'][1]['robust_top1'] <= p['top1'] else 1)" \
        "$tmp/grid.json" "$tmp/plain.json" || fail "grid row eps 0 differs from the plain campaign"
grep -q "<svg" "$tmp/grid.svg" 2>/dev/null || fail "grid --plot wrote no SVG"
# crafted on each faulted model: row eps 0 is still the plain campaign; an attack never raises top-1
expect 0 grid --model resnet20 --weights "$emb" --data "$mini" --limit 20 --eps 0,2/255 --steps 2 --rate 1e-5 --trials 3 \
    --fault-seed 4 --craft faulted --json "$tmp/gridf.json" &&
    python3 -c "import json, sys; g, p = (json.load(open(f)) for f in sys.argv[1:]); r = g['rows']; sys.exit(0 if g['crafted_on'] == 'faulted model' and r[0]['results'][0]['mean_top1'] == p['results'][0]['mean_top1'] and r[1]['results'][0]['mean_top1'] <= r[0]['results'][0]['mean_top1'] else 1)" \
        "$tmp/gridf.json" "$tmp/plain.json" || fail "grid --craft faulted: row eps 0 differs from the plain campaign"
expect_error 2 "craft 'faulted': faulted needs --site weights" grid --model resnet20 --weights "$emb" --data "$mini" --limit 20 \
    --rate 1e-5 --craft faulted --site both
expect_error 2 "craft 'model': expected clean or faulted" grid --model resnet20 --weights "$emb" --data "$mini" --rate 1e-5 --craft model
expect 0 "${atk[@]}" --attack square --norm l2 --eps 0.5 --queries 20 --json "$tmp/sq.json" &&
    { cp "$tmp/sq.json" "$tmp/out"; check_json "d['robust_top1'] <= d['clean_top1'] and all(p['l2'] <= 0.5 * (1 + 1e-5) for p in d['per_image'])"; }
# adversarial training: one short epoch, the checkpoint evaluates with eval and resumes
rob=(robust-train --model resnet20 --data "$data" --limit 40 --eval-limit 20 --batch 20 --steps 1 --eval-steps 1 --out "$tmp/rob.safetensors")
expect 0 "${rob[@]}" --loss pgd-at --eps 0.1 --step 0.1 --epochs 1 --json &&
    check_json "len(d['epochs']) == 1 and 0 <= d['epochs'][0]['held_out_robust_top1'] <= d['epochs'][0]['held_out_clean_top1'] <= 100"
expect 0 eval --model resnet20 --weights "$tmp/rob.safetensors" --data "$data" --limit 20 --json && check_json "d['images'] == 20"
expect_error 2 "trained with loss=pgd-at, this run asks for trades" "${rob[@]}" --loss trades --eps 0.1 --step 0.1 --epochs 2
expect_error 2 "distils a teacher: give --teacher" "${rob[@]}" --loss rslad --epochs 1

# hardening: bounds found on the train split, saved with the weights, used by eval, inject and compare
hard=$tmp/ranger.safetensors
expect 0 harden --model resnet20 --weights "$ckpt" --data "$data" --method ranger --calibration 200 --out "$hard" --json &&
    check_json "d['method'] == 'ranger' and d['mode'] == 'zero' and d['bound_parameters'] == 19 and len(d['slots']) == 19 and all(s['max'] > 0 for s in d['slots'])"
expect 0 eval --model resnet20 --weights "$hard" --data "$data" --limit 200 --json && check_json "0 <= d['top1'] <= 100"
expect 0 inject --model resnet20 --weights "$hard" --data "$data" --limit 100 --rate 1e-5 --trials 2 --json "$tmp/hinj.json" &&
    { cp "$tmp/hinj.json" "$tmp/out"; check_json "'relu.bound' in d['weight_sites'] and 'layer3.2.relu2.bound' in d['weight_sites']"; }
expect 0 harden --model resnet20 --weights "$ckpt" --data "$data" --method fitact --calibration 100 --train-images 100 \
    --batch 50 --epochs 1 --out "$tmp/fitact.safetensors" --json &&
    check_json "d['mode'] == 'smooth' and d['granularity'] == 'neuron' and d['fitact']['steps'] == 2 and d['bound_parameters'] > 10000 and 0 < d['fitact']['start_top1'] <= 100 and 0 < d['fitact']['final_top1'] <= 100"
expect 0 compare --model resnet20 --weights "$ckpt,$hard" --data "$data" --limit 100 --rate 0,1e-4 --trials 2 \
    --json "$tmp/cmp.json" --plot "$tmp/cmp.svg" &&
    { grep -q "| unbounded | none |" "$tmp/out" && grep -q "| ranger | ranger | zero, layer | 19 " "$tmp/out" || fail "compare: no table rows"; }
cp "$tmp/cmp.json" "$tmp/out" 2>/dev/null &&
    check_json "[r['bound_parameters'] for r in d['rows']] == [0, 19] and all(len(r['results']) == 2 and r['results'][0]['mean_top1'] == r['top1'] for r in d['rows'])"
grep -q "^<svg" "$tmp/cmp.svg" || fail "compare --plot wrote no SVG"
expect_error 2 "already hardened" harden --model resnet20 --weights "$hard" --data "$data" --method ranger --out "$bad"
expect_error 2 "unknown hardening method 'clip'" harden --model resnet20 --weights "$ckpt" --data "$data" --method clip --out "$bad"
expect_error 2 "granularity 'neuron': ftclipact searches one bound per layer" \
    harden --model resnet20 --weights "$ckpt" --data "$data" --method ftclipact --granularity neuron --out "$bad"
expect_error 2 "calibration subset of 5000 images does not fit" \
    harden --model resnet20 --weights "$ckpt" --data "$data" --method ranger --calibration 5000 --out "$bad"
expect_error 1 "has a test/ image folder but no train/ folder" \
    harden --model resnet20 --weights "$emb" --data "$mini" --method ranger --out "$bad"
expect_error 2 "labels .*needs one label per checkpoint" compare --model resnet20 --weights "$ckpt,$hard" --data "$data" --labels a
[ -e "$bad" ] && fail "a failed harden left $bad behind"

echo "cli: $failures failure(s)"
[ "$failures" -eq 0 ]
