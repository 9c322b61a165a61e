// Verifying a ledger receipt in the browser.
//
// A receipt (GET /v1/ledger/records/{id}/receipt) holds the record's envelope (its encrypted,
// canonical bytes: the leaf), leaf index and hash, an RFC 6962 inclusion proof, and the block that
// covers it as a signed note (C2SP signed-note format: the checkpoint text, a blank line,
// "— <name> <base64(key id ‖ Ed25519 signature)>"). The checks, each reported on its own, are
// those of the server's Receipt.verify and NoteVerifier:
//   1. the record: SHA-256(0x00 ‖ envelope) equals the receipt's leaf hash, and the envelope's
//      public header names the receipt's record id, which is the answer's id; its time and node
//      are then proven too;
//   (the answer: the leaf hash the completion response returned, when the page has it, is the
//      receipt's);
//   2. inclusion: the proof leads from the leaf to the block's root hash (RFC 9162 §2.1.3.2);
//   3. the signature: the checkpoint's origin is the node key's name, and every signature line by
//      the node key (same name and key id) verifies, at least one — with Web Crypto's Ed25519
//      where the browser has it, else by asking the server (POST /v1/ledger/verify-receipt), and
//      the result says which;
//   4. the node key is the one this browser saw first for this server (trust on first use);
//   5. with witnesses (the server publishes its policy with its key): at least the threshold of
//      them cosigned the block (C2SP tlog-cosignature: Ed25519 over "cosignature/v1", "time <t>"
//      and the checkpoint, key id with type 0x04), checked like the signature, and the policy is
//      the one this browser saw first.

const encoder = new TextEncoder();

export function base64ToBytes(text) {
    const raw = atob(text);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
}

export function bytesToBase64(bytes) {
    let raw = "";
    for (const b of bytes) raw += String.fromCharCode(b);
    return btoa(raw);
}

function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
}

async function sha256(...parts) {
    const total = parts.reduce((n, p) => n + p.length, 0);
    const buffer = new Uint8Array(total);
    let at = 0;
    for (const p of parts) { buffer.set(p, at); at += p.length; }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
}

export const leafHash = bytes => sha256(Uint8Array.of(0), bytes);
const nodeHash = (left, right) => sha256(Uint8Array.of(1), left, right);

/** The root an inclusion proof leads to (RFC 9162 §2.1.3.2), or throws why it can't. */
export async function rootFromInclusion(index, size, leaf, proof) {
    if (!(index < size)) throw new Error(`leaf index ${index} is not below the tree size ${size}`);
    let fn = BigInt(index), sn = BigInt(size) - 1n, r = leaf;
    for (const p of proof) {
        if (p.length !== 32) throw new Error("a proof hash is not 32 bytes");
        if (sn === 0n) throw new Error("the inclusion proof is too long");
        if ((fn & 1n) === 1n || fn === sn) {
            r = await nodeHash(p, r);
            if ((fn & 1n) === 0n) while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
        } else {
            r = await nodeHash(r, p);
        }
        fn >>= 1n;
        sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("the inclusion proof is too short");
    return r;
}

/** Splits a signed note into its text (ending in a newline) and signatures. */
export function parseNote(note) {
    const split = note.lastIndexOf("\n\n");
    if (split < 0 || !note.endsWith("\n")) throw new Error("the block is not a signed note");
    const text = note.slice(0, split + 1);
    const signatures = note.slice(split + 2, -1).split("\n").map(line => {
        const m = /^\u2014 (\S+) (\S+)$/.exec(line);
        if (!m) throw new Error(`bad signature line "${line}"`);
        const blob = base64ToBytes(m[2]);
        // Other keys' lines (cosignatures) may hold other algorithms: only their key id is read.
        if (blob.length <= 4) throw new Error(`the signature by ${m[1]} is not a 4-byte key id and a signature`);
        const keyID = ((blob[0] << 24) | (blob[1] << 16) | (blob[2] << 8) | blob[3]) >>> 0;
        return { name: m[1], keyID, signature: blob.slice(4) };
    });
    const lines = text.slice(0, -1).split("\n");
    if (lines.length < 4) throw new Error("the block's checkpoint is missing lines");
    const block = /^block (\d+) (\S+)$/.exec(lines[3]);
    if (!block) throw new Error(`bad block line "${lines[3]}"`);
    return {
        text, signatures,
        origin: lines[0], size: Number(lines[1]), root: base64ToBytes(lines[2]),
        height: Number(block[1]), previousHash: block[2],
    };
}

/**
 * The public header of an envelope's canonical bytes, version 1 ("VLE1") or 2 ("VLE2"): magic,
 * record id (u32 length + UTF-8), time (i64 milliseconds), node id (u32 length + UTF-8), all
 * big-endian (Sources/Ledger/RecordEnvelope+Encoding.swift). Throws if it does not parse.
 */
export function parseEnvelopeHeader(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = 0;
    const need = n => { if (bytes.length - at < n) throw new Error("the envelope is truncated"); };
    need(4);
    const magic = String.fromCharCode(...bytes.slice(0, 4));
    if (magic !== "VLE1" && magic !== "VLE2") throw new Error("the envelope is not a VLE1 or VLE2 envelope");
    at = 4;
    const decoder = new TextDecoder("utf-8", { fatal: true });
    const string = () => {
        need(4);
        const length = view.getUint32(at);
        at += 4;
        need(length);
        const text = decoder.decode(bytes.subarray(at, at + length));
        at += length;
        return text;
    };
    const recordID = string();
    need(8);
    const timestamp = Number(view.getBigInt64(at));
    at += 8;
    const nodeID = string();
    return { version: magic === "VLE1" ? 1 : 2, recordID, timestamp, nodeID };
}

/** Parses a note verifier key `name+keyid+base64(0x01 ‖ public key)` and checks its key id. */
export async function parseVerifierKey(text) {
    // name+keyid+key: the key's base64 may hold "+" too, so only the first two split.
    const m = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(text);
    if (!m) throw new Error(`"${text}" is not a note verifier key`);
    const parts = m.slice(1);
    const raw = base64ToBytes(parts[2]);
    if (raw.length !== 33 || raw[0] !== 1) throw new Error(`"${text}" is not an Ed25519 verifier key`);
    const id = await sha256(encoder.encode(parts[0]), Uint8Array.of(0x0a, 0x01), raw.slice(1));
    const keyID = ((id[0] << 24) | (id[1] << 16) | (id[2] << 8) | id[3]) >>> 0;
    if (keyID !== parseInt(parts[1], 16)) throw new Error("the verifier key's id does not match its key");
    return { name: parts[0], keyID, publicKey: raw.slice(1), text };
}

/** Parses a cosigner verifier key `name+keyid+base64(0x04 ‖ public key)` and checks its key id. */
export async function parseCosignerKey(text) {
    const m = /^([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(text);
    if (!m) throw new Error(`"${text}" is not a witness key`);
    const raw = base64ToBytes(m[3]);
    if (raw.length !== 33 || raw[0] !== 4) throw new Error(`"${text}" is not a timestamped Ed25519 (0x04) witness key`);
    const id = await sha256(encoder.encode(m[1]), Uint8Array.of(0x0a, 0x04), raw.slice(1));
    const keyID = ((id[0] << 24) | (id[1] << 16) | (id[2] << 8) | id[3]) >>> 0;
    if (keyID !== parseInt(m[2], 16)) throw new Error("the witness key's id does not match its key");
    return { name: m[1], keyID, publicKey: raw.slice(1), text };
}

/** Whether `key` cosigned `note` (tlog-cosignature v1): a 72-byte line, time then signature. */
async function cosigned(note, key, cryptoKey) {
    for (const s of note.signatures.filter(s => s.name === key.name && s.keyID === key.keyID)) {
        if (s.signature.length !== 72) return false;
        const view = new DataView(s.signature.buffer, s.signature.byteOffset, 8);
        const message = encoder.encode(`cosignature/v1\ntime ${view.getBigUint64(0)}\n${note.text}`);
        if (await crypto.subtle.verify({ name: "Ed25519" }, cryptoKey, s.signature.slice(8), message)) return true;
    }
    return false;
}

/** Whether this browser's Web Crypto verifies Ed25519 signatures. */
async function ed25519Key(publicKey) {
    try {
        return await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    } catch {
        return null;
    }
}

const pinKey = origin => `verity.node-key.${origin}`;
const pinPolicy = origin => `verity.witness-policy.${origin}`;

/**
 * Verifies the receipt of `recordID`. `api.get(path)` and `api.post(path, body)` return parsed
 * JSON or throw. `expectedLeafHash` is the base64 leaf hash the completion response returned.
 * Returns {ok, method, block, record, receipt, nodeKey, checks: [{name, ok, detail}]}; `record`
 * ({id, timestamp, nodeID, version}) holds the envelope header's facts once the envelope is bound.
 */
export async function verifyReceipt(api, recordID, expectedLeafHash) {
    const checks = [];
    const check = (name, ok, detail) => { checks.push({ name, ok, detail }); return ok; };
    const id = encodeURIComponent(recordID);
    const [receipt, nodeKeyInfo] = await Promise.all([
        api.get(`/v1/ledger/records/${id}/receipt?wait=true`),
        api.get("/v1/ledger/node-key"),
    ]);
    const result = { ok: false, method: "browser", block: null, record: null, receipt, nodeKey: nodeKeyInfo.verifier_key, checks };

    // 1. The record: the envelope is the leaf, and its header names this record.
    const leaf = base64ToBytes(receipt.leafHash);
    try {
        if (typeof receipt.envelope !== "string") throw new Error("the receipt carries no envelope, so its record id is unproven");
        const envelope = base64ToBytes(receipt.envelope);
        if (!equal(await leafHash(envelope), leaf)) throw new Error("SHA-256 of the receipt's envelope differs from its leaf hash");
        const header = parseEnvelopeHeader(envelope);
        if (header.recordID !== receipt.recordID) throw new Error(`the envelope is record ${header.recordID}, not the receipt's ${receipt.recordID}`);
        if (header.recordID !== recordID) throw new Error(`the receipt is for record ${header.recordID}, not this answer's ${recordID}`);
        result.record = { id: header.recordID, timestamp: header.timestamp, nodeID: header.nodeID, version: header.version };
        check("Record", true, `SHA-256 of the encrypted record equals the leaf hash; its header names record ${header.recordID}, `
            + `recorded ${new Date(header.timestamp).toISOString()} by node ${header.nodeID}`);
    } catch (error) {
        check("Record", false, error.message);
    }
    if (expectedLeafHash !== undefined && expectedLeafHash !== null) {
        check("Answer", expectedLeafHash === receipt.leafHash,
            expectedLeafHash === receipt.leafHash ? "the leaf hash the answer came with is the receipt's"
                : "the leaf hash the answer came with differs from the receipt's");
    }

    // 2. Inclusion in the block's tree.
    let note;
    try {
        note = parseNote(receipt.block);
        result.block = { height: note.height, size: note.size, root: bytesToBase64(note.root), origin: note.origin };
        const root = await rootFromInclusion(receipt.leafIndex, note.size, leaf, receipt.inclusionProof.map(base64ToBytes));
        check("Inclusion", equal(root, note.root), equal(root, note.root)
            ? `leaf ${receipt.leafIndex} is in the tree of ${note.size} records signed in block ${note.height}`
            : "the inclusion proof does not lead to the block's root hash");
    } catch (error) {
        check("Inclusion", false, error.message);
    }

    // 3. The block's signature by the node key, as NoteVerifier and Block check it: the origin is
    //    the key's name, and every signature line by the key verifies (at least one).
    if (note) {
        let key;
        try {
            key = await parseVerifierKey(nodeKeyInfo.verifier_key);
        } catch (error) {
            check("Signature", false, error.message);
        }
        const signatures = key ? note.signatures.filter(s => s.name === key.name && s.keyID === key.keyID) : [];
        if (key && note.origin !== key.name) {
            check("Signature", false, `the block's origin "${note.origin}" is not the node key's name "${key.name}"`);
        } else if (key && signatures.length === 0) {
            check("Signature", false, `the block carries no signature by ${key.name}`);
        } else if (key) {
            const cryptoKey = await ed25519Key(key.publicKey);
            if (cryptoKey) {
                let valid = true;
                for (const signature of signatures) {
                    valid = valid && signature.signature.length === 64 && await crypto.subtle.verify({ name: "Ed25519" }, cryptoKey, signature.signature, encoder.encode(note.text));
                }
                const count = signatures.length === 1 ? "signature" : `${signatures.length} signatures`;
                check("Signature", valid, valid ? `Ed25519 ${count} by ${key.name} checked in this browser (Web Crypto)`
                    : `an Ed25519 signature by ${key.name} does not verify`);
            } else {
                result.method = "server";
                const verdict = await api.post("/v1/ledger/verify-receipt", receipt);
                check("Signature", verdict.valid === true, verdict.valid
                    ? "checked by the server: this browser's Web Crypto has no Ed25519"
                    : `the server rejects the receipt: ${verdict.reason}`);
            }
        }
    }

    // 4. The node key against the one first seen from this server.
    const pinned = localStorage.getItem(pinKey(location.origin));
    if (!pinned) {
        localStorage.setItem(pinKey(location.origin), nodeKeyInfo.verifier_key);
        check("Node key", true, "first seen from this server; remembered in this browser");
    } else {
        check("Node key", pinned === nodeKeyInfo.verifier_key, pinned === nodeKeyInfo.verifier_key
            ? "the same key this browser saw before"
            : `CHANGED: this browser saw ${pinned} before; the server now shows ${nodeKeyInfo.verifier_key}`);
    }
    // 5. The witnesses' cosignatures, under the policy the server publishes (pinned like its key).
    const witnesses = nodeKeyInfo.witnesses ?? [];
    if (note && witnesses.length > 0) {
        const threshold = nodeKeyInfo.witness_threshold ?? witnesses.length;
        const policy = `${threshold} of ${witnesses.join(" ")}`;
        const pinnedPolicy = localStorage.getItem(pinPolicy(location.origin));
        if (!pinnedPolicy) localStorage.setItem(pinPolicy(location.origin), policy);
        try {
            const keys = await Promise.all(witnesses.map(parseCosignerKey));
            let names;
            if (result.method === "browser" && await ed25519Key(keys[0].publicKey)) {
                names = [];
                for (const key of keys) if (await cosigned(note, key, await ed25519Key(key.publicKey))) names.push(key.name);
            } else {
                result.method = "server";
                const verdict = await api.post("/v1/ledger/verify-receipt", receipt);
                names = verdict.witnesses?.cosigned ?? [];
            }
            const met = names.length >= threshold && (!pinnedPolicy || pinnedPolicy === policy);
            check("Witnesses", met, pinnedPolicy && pinnedPolicy !== policy
                ? `CHANGED: this browser saw the witness policy "${pinnedPolicy}" before; the server now shows "${policy}"`
                : names.length >= threshold ? `cosigned by ${names.length} of ${witnesses.length} witnesses (${names.join(", ")}); the policy needs ${threshold}`
                    : `meets no witness policy: ${names.length} of ${witnesses.length} witnesses cosigned the block, ${threshold} needed`);
        } catch (error) {
            check("Witnesses", false, error.message);
        }
    }
    result.ok = checks.every(c => c.ok);
    return result;
}
