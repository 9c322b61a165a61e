// The "Export" action for the selected model: a GGUF file, a Hugging Face safetensors folder, or a
// LoRA adapter alone, made by the server as a background job (POST /v1/exports), its progress polled
// (GET /v1/exports/{id}), and its files downloaded with the API key, each checked against the
// SHA-256 the server states, with the export's ledger record and its receipt verified here.

import { APIError, describeError } from "./api.js";
import { verifyReceipt } from "./receipt.js";

const $ = id => document.getElementById(id);

/** The types each format takes (value, label); the first is preselected. */
export const EXPORT_TYPES = {
    gguf: [
        ["Q4_K_M", "Q4_K_M — 4-bit mix, the usual choice"], ["Q5_K_M", "Q5_K_M — 5-bit mix"], ["Q8_0", "Q8_0 — 8-bit"],
        ["Q6_K", "Q6_K"], ["Q5_K_S", "Q5_K_S"], ["Q4_K_S", "Q4_K_S"], ["Q3_K_L", "Q3_K_L"], ["Q3_K_M", "Q3_K_M"], ["Q3_K_S", "Q3_K_S"],
        ["Q2_K", "Q2_K"], ["Q5_1", "Q5_1"], ["Q5_0", "Q5_0"], ["Q4_1", "Q4_1"], ["Q4_0", "Q4_0"], ["IQ4_NL", "IQ4_NL"], ["IQ4_XS", "IQ4_XS"],
        ["F16", "F16 — unquantized"], ["BF16", "BF16 — unquantized"], ["F32", "F32 — unquantized"],
    ],
    safetensors: [["", "as the source (F32 from a quantized one)"], ["F32", "F32"], ["F16", "F16"], ["BF16", "BF16"]],
    lora: [["peft", "PEFT folder (peft, transformers)"], ["gguf", "GGUF LoRA (llama.cpp)"]],
};

const POLL_MS = 1000;
const JOB_KEY = "verity.export.v1";
// Above this, a browser with the File System Access API writes the download straight to disk.
const STREAM_TO_DISK_BYTES = 512 * 1024 * 1024;
// Up to this, a downloaded file is hashed here (Web Crypto has no streaming SHA-256).
const HASH_LIMIT_BYTES = 2 * 1024 * 1024 * 1024;

/**
 * Wires the Export button and dialog. `selected()` is {id, parent} of the model picked in the page
 * (parent: the base model of a LoRA adapter, else undefined); `say(text)` writes the status line.
 */
export function setUpModelExport(api, { selected, say }) {
    const ui = {
        open: $("export-model"), dialog: $("export-dialog"), form: $("export-form"), source: $("export-source"),
        format: $("export-format"), type: $("export-type"), mergeRow: $("export-merge-row"), merge: $("export-merge"),
        job: $("export-job"), progress: $("export-progress"), stage: $("export-stage"), files: $("export-files"),
        facts: $("export-facts"), error: $("export-error"), start: $("export-start"), cancel: $("export-cancel"),
        close: $("export-close"), again: $("export-again"),
    };
    let job = null;        // the last job shown: the API's object
    let pollTimer = null;

    function model() {
        const picked = selected();
        return picked?.id ? picked : null;
    }

    function fillTypes() {
        const types = EXPORT_TYPES[ui.format.value] || [];
        ui.type.replaceChildren(...types.map(([value, label]) => {
            const option = document.createElement("option");
            option.value = value;
            option.textContent = label;
            return option;
        }));
        const picked = model();
        ui.mergeRow.hidden = !picked?.parent || ui.format.value === "lora";
    }

    function showForm() {
        const picked = model();
        ui.form.dataset.mode = "form";
        ui.source.textContent = picked
            ? (picked.parent ? `LoRA adapter ${picked.id} on ${picked.parent}` : `Model ${picked.id}`)
            : "No model is selected.";
        // A LoRA export needs an adapter.
        ui.format.querySelector("option[value='lora']").disabled = !picked?.parent;
        if (!picked?.parent && ui.format.value === "lora") ui.format.value = "gguf";
        ui.merge.checked = true;
        fillTypes();
        ui.job.hidden = true;
        ui.error.hidden = true;
        ui.start.hidden = false;
        ui.start.disabled = !picked;
        ui.cancel.hidden = true;
        ui.again.hidden = true;
        for (const field of [ui.format, ui.type, ui.merge]) field.disabled = false;
    }

    function showError(text) {
        ui.error.textContent = text;
        ui.error.hidden = false;
    }

    async function start(event) {
        event.preventDefault();
        const picked = model();
        if (!picked) return;
        const body = { model: picked.id, format: ui.format.value };
        if (ui.type.value) body.type = ui.type.value;
        if (picked.parent && ui.format.value !== "lora") body.merge = ui.merge.checked;
        ui.error.hidden = true;
        ui.start.disabled = true;
        try {
            show(await api.post("/v1/exports", body));
            localStorage.setItem(JOB_KEY, job.id);
            say(`Export ${job.id} started.`);
            poll();
        } catch (error) {
            ui.start.disabled = false;
            showError(explain(error));
        }
    }

    function explain(error) {
        if (error instanceof APIError && error.status === 403) return `Not allowed (403): ${error.message}`;
        if (error instanceof APIError && error.status === 429 && error.code === "queue_full") {
            return `The server is busy with other exports (429): ${error.message}`;
        }
        return describeError(error);
    }

    function poll() {
        clearTimeout(pollTimer);
        if (!job || ["succeeded", "failed", "cancelled"].includes(job.status)) return;
        pollTimer = setTimeout(async () => {
            try {
                show(await api.get(`/v1/exports/${encodeURIComponent(job.id)}`));
            } catch (error) {
                if (error instanceof APIError && error.status === 404) {
                    localStorage.removeItem(JOB_KEY);
                    showError("The export is gone from the server.");
                    job = null;
                    return;
                }
                // Unreachable for a moment: keep polling.
            }
            poll();
        }, POLL_MS);
    }

    /** Shows a job: its progress while it runs, its files and record once done. */
    function show(next) {
        const changed = job?.id !== next.id || job?.status !== next.status;
        job = next;
        ui.form.dataset.mode = "job";
        ui.form.dataset.status = job.status;
        ui.job.hidden = false;
        ui.start.hidden = true;
        for (const field of [ui.format, ui.type, ui.merge]) field.disabled = true;
        const running = job.status === "queued" || job.status === "running";
        ui.cancel.hidden = !running;
        ui.again.hidden = running;
        const what = `${job.model}${job.merge ? " (merged)" : ""} as ${job.format} ${job.type || ""}`.trim();
        ui.source.textContent = `Export ${job.id}: ${what}`;
        const p = job.progress;
        if (job.status === "queued") {
            ui.progress.removeAttribute("value");
            ui.stage.textContent = `Waiting${job.queue_position ? ` (${job.queue_position} in the queue)` : ""}…`;
        } else if (job.status === "running" && p) {
            ui.progress.max = Math.max(1, p.total);
            ui.progress.value = Math.min(p.done, p.total);
            ui.stage.textContent = `${p.stage} ${p.done}/${p.total}${p.item ? ` · ${p.item}` : ""}`;
        } else if (job.status === "running") {
            ui.progress.removeAttribute("value");
            ui.stage.textContent = "Starting…";
        } else {
            ui.progress.max = 1;
            ui.progress.value = job.status === "succeeded" ? 1 : 0;
            ui.stage.textContent = {
                succeeded: "Done: the files are ready, and the export is recorded in the ledger.",
                failed: "The export failed.",
                cancelled: "The export was cancelled.",
            }[job.status];
        }
        if (job.error) showError(job.error.message);
        else ui.error.hidden = true;
        if (changed) {
            renderFiles();
            renderFacts();
        }
    }

    function renderFiles() {
        ui.files.replaceChildren(...(job.files || []).map(file => {
            const li = document.createElement("li");
            li.className = "export-file";
            const name = document.createElement("span");
            name.className = "export-file-name";
            name.textContent = `${file.name} (${size(file.bytes)})`;
            const digest = document.createElement("code");
            digest.className = "export-file-digest";
            digest.textContent = file.sha256;
            const button = document.createElement("button");
            button.type = "button";
            button.className = "button";
            button.dataset.action = "download";
            button.dataset.name = file.name;
            button.textContent = "Download";
            const state = document.createElement("span");
            state.className = "export-file-state";
            li.append(name, button, state, digest);
            return li;
        }));
    }

    function renderFacts() {
        ui.facts.replaceChildren();
        const add = (term, value) => {
            if (value === undefined || value === null || value === "") return null;
            const dt = document.createElement("dt");
            dt.textContent = term;
            const dd = document.createElement("dd");
            dd.textContent = String(value);
            ui.facts.append(dt, dd);
            return dd;
        };
        for (const note of job.notes || []) add("Note", note);
        const record = add("Ledger record", job.record_id);
        if (record && job.receipt) {
            record.dataset.state = "verifying";
            record.textContent = `${job.record_id} · verifying…`;
            const id = job.id;
            verifyReceipt(api, job.record_id, job.receipt.leafHash).then(result => {
                if (job?.id !== id) return;
                record.dataset.state = result.ok ? "verified" : "failed";
                record.textContent = `${job.record_id} · block ${result.block?.height ?? "?"} · ${result.ok ? "receipt verified ✓" : "receipt does NOT verify ✗"}`;
                record.title = result.checks.map(c => `${c.ok ? "✓" : "✗"} ${c.name}: ${c.detail}`).join("\n");
            }).catch(error => {
                if (job?.id !== id) return;
                record.dataset.state = "unavailable";
                record.textContent = `${job.record_id} · receipt unavailable (${describeError(error)})`;
            });
        }
        if (job.record_id) add("Check a file", `verity ledger provenance FILE finds this record`);
    }

    async function download(button) {
        const file = (job?.files || []).find(f => f.name === button.dataset.name);
        if (!file) return;
        const state = button.parentElement.querySelector(".export-file-state");
        button.disabled = true;
        try {
            let sink = null;
            if (file.bytes > STREAM_TO_DISK_BYTES && window.showSaveFilePicker) {
                // Asked first, while the click still counts as the user's gesture.
                const handle = await window.showSaveFilePicker({ suggestedName: file.name });
                sink = await handle.createWritable();
            }
            const response = await api.request(file.url);
            const expected = response.headers.get("X-Content-SHA256");
            const total = Number(response.headers.get("Content-Length")) || file.bytes;
            const reader = response.body.getReader();
            const chunks = [];
            let received = 0;
            for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                received += value.length;
                if (sink) await sink.write(value);
                else chunks.push(value);
                state.textContent = `${Math.floor(received * 100 / Math.max(1, total))}%`;
            }
            if (received !== total) throw new Error(`the download ended after ${received} of ${total} bytes`);
            if (sink) {
                await sink.close();
                state.textContent = "saved (not hashed in this browser)";
                return;
            }
            const blob = new Blob(chunks, { type: "application/octet-stream" });
            if (crypto.subtle && expected && blob.size <= HASH_LIMIT_BYTES) {
                const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
                const hex = Array.from(digest, b => b.toString(16).padStart(2, "0")).join("");
                if (hex !== expected || `sha256:${hex}` !== file.sha256) {
                    state.dataset.state = "failed";
                    state.textContent = "SHA-256 MISMATCH ✗ — not saved";
                    return;
                }
                state.dataset.state = "verified";
                state.textContent = "SHA-256 checked ✓";
            } else {
                state.textContent = "downloaded";
            }
            const url = URL.createObjectURL(blob);
            const a = document.createElement("a");
            a.href = url;
            a.download = file.name;
            document.body.append(a);
            a.click();
            a.remove();
            setTimeout(() => URL.revokeObjectURL(url), 60000);
        } catch (error) {
            if (error.name === "AbortError") { state.textContent = ""; return; }
            state.dataset.state = "failed";
            state.textContent = `failed: ${error instanceof APIError ? describeError(error) : error.message}`;
        } finally {
            button.disabled = false;
        }
    }

    async function cancel() {
        if (!job) return;
        ui.cancel.disabled = true;
        try {
            show(await api.request(`/v1/exports/${encodeURIComponent(job.id)}`, { method: "DELETE" }).then(r => r.json()));
            poll();
        } catch (error) {
            showError(describeError(error));
        } finally {
            ui.cancel.disabled = false;
        }
    }

    async function open() {
        if (!ui.dialog.open) ui.dialog.showModal();
        if (job && !["succeeded", "failed", "cancelled"].includes(job.status)) return;
        // A job started before the page was reloaded is picked up again.
        const saved = !job && localStorage.getItem(JOB_KEY);
        if (saved) {
            try {
                show(await api.get(`/v1/exports/${encodeURIComponent(saved)}`));
                poll();
                return;
            } catch {
                localStorage.removeItem(JOB_KEY);
            }
        }
        if (!job) showForm();
    }

    ui.open.addEventListener("click", open);
    ui.format.addEventListener("change", fillTypes);
    ui.form.addEventListener("submit", start);
    ui.cancel.addEventListener("click", cancel);
    ui.close.addEventListener("click", () => ui.dialog.close());
    ui.again.addEventListener("click", () => {
        job = null;
        localStorage.removeItem(JOB_KEY);
        showForm();
    });
    ui.files.addEventListener("click", event => {
        const button = event.target.closest("button[data-action='download']");
        if (button) download(button);
    });
    showForm();
}

function size(bytes) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let value = bytes, unit = 0;
    while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
    return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}
