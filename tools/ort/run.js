#!/usr/bin/env node
// Runs an ONNX model on ONNX Runtime (CPU), the reference for the embed engine.
//
//   node tools/ort/run.js --model M.onnx --input FILE --shape N,C,H,W
//        [--outputs a,b] [--out-dir DIR] [--threads T] [--time ITERS] [--warmup W]
//
// FILE holds the input tensor as raw little-endian float32 (NCHW). Without --time, each
// requested output (default: every graph output) is written to DIR/<name>.f32 as raw float32
// (every character of the name outside A-Z a-z 0-9 _ . - replaced by _) and its shape printed
// as one JSON line per output. With --time, the model is run W times to
// warm up, then ITERS times, and one JSON line gives the per-run wall times in milliseconds.
// --threads sets intra_op_num_threads (inter-op is 1, sequential execution, as in our engine).
//
// With --serve (the benchmark's peer, bench/embed), the session stays loaded and stdin is
// read line by line: "B ITERS" runs the first B samples of the input (B <= N) ITERS times
// and answers one line "ok CPU_MS WALL_MS_1 ... WALL_MS_ITERS", where CPU_MS is the user +
// system CPU time of this process over the ITERS runs (all its threads). --spin 0 turns off
// the intra-op threads' spin-waiting (session.intra_op.allow_spinning), ORT's default is 1.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function usage(msg) {
    process.stderr.write(`run.js: ${msg}\n`);
    process.exit(2);
}

function parseArgs(argv) {
    const a = { outputs: null, outDir: '.', threads: 1, time: 0, warmup: 3, serve: false, spin: 1 };
    for (let i = 0; i < argv.length; i++) {
        const k = argv[i], v = argv[i + 1];
        if (k === '--serve') {
            a.serve = true;
            continue;
        }
        if (v === undefined) usage(`missing value for ${k}`);
        i++;
        switch (k) {
        case '--model': a.model = v; break;
        case '--input': a.input = v; break;
        case '--shape': a.shape = v.split(',').map((s) => parseInt(s, 10)); break;
        case '--outputs': a.outputs = v.split(',').filter((s) => s.length > 0); break;
        case '--out-dir': a.outDir = v; break;
        case '--threads': a.threads = parseInt(v, 10); break;
        case '--time': a.time = parseInt(v, 10); break;
        case '--warmup': a.warmup = parseInt(v, 10); break;
        case '--spin': a.spin = parseInt(v, 10); break;
        default: usage(`unknown option ${k}`);
        }
    }
    if (!a.model || !a.input || !a.shape) usage('--model, --input and --shape are required');
    if (a.shape.some((d) => !(d > 0))) usage('bad --shape');
    if (!(a.threads >= 1)) usage('bad --threads');
    return a;
}

async function serve(session, data, shape, outputs) {
    const per = shape.slice(1).reduce((x, y) => x * y, 1);
    const rl = require('readline').createInterface({ input: process.stdin, terminal: false });
    for await (const line of rl) {
        const [b, iters] = line.trim().split(/\s+/).map((s) => parseInt(s, 10));
        if (!(b >= 1 && b <= shape[0] && iters >= 1)) {
            process.stdout.write(`error bad request "${line}"\n`);
            continue;
        }
        const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data.subarray(0, b * per),
            [b].concat(shape.slice(1))) };
        const ms = [];
        const cpu0 = process.cpuUsage();
        for (let i = 0; i < iters; i++) {
            const t0 = process.hrtime.bigint();
            await session.run(feeds, outputs);
            ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        const cpu = process.cpuUsage(cpu0);
        process.stdout.write(`ok ${(cpu.user + cpu.system) / 1000} ${ms.join(' ')}\n`);
    }
}

async function main() {
    const a = parseArgs(process.argv.slice(2));
    const session = await ort.InferenceSession.create(a.model, {
        intraOpNumThreads: a.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        extra: { session: { intra_op: { allow_spinning: a.spin ? '1' : '0' } } },
    });
    const want = a.shape.reduce((x, y) => x * y, 1);
    const raw = fs.readFileSync(a.input);
    if (raw.length !== want * 4) usage(`${a.input}: ${raw.length} bytes, shape needs ${want * 4}`);
    const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, a.shape) };
    const outputs = a.outputs || session.outputNames;
    for (const o of outputs)
        if (!session.outputNames.includes(o)) usage(`model has no output ${o} (has ${session.outputNames})`);

    if (a.serve) {
        await serve(session, data, a.shape, outputs);
        return;
    }
    if (a.time > 0) {
        for (let i = 0; i < a.warmup; i++) await session.run(feeds, outputs);
        const ms = [];
        for (let i = 0; i < a.time; i++) {
            const t0 = process.hrtime.bigint();
            await session.run(feeds, outputs);
            ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        process.stdout.write(JSON.stringify({ model: path.basename(a.model), batch: a.shape[0],
            threads: a.threads, ms }) + '\n');
        return;
    }
    const res = await session.run(feeds, outputs);
    fs.mkdirSync(a.outDir, { recursive: true });
    for (const o of outputs) {
        const t = res[o];
        const file = o.replace(/[^A-Za-z0-9_.-]/g, '_');
        fs.writeFileSync(path.join(a.outDir, `${file}.f32`), Buffer.from(t.data.buffer, t.data.byteOffset,
            t.data.byteLength));
        process.stdout.write(JSON.stringify({ output: o, dims: t.dims }) + '\n');
    }
}

main().catch((e) => {
    process.stderr.write(`run.js: ${e.message || e}\n`);
    process.exit(1);
});
