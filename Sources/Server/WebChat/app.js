// Verity's web chat: conversations with the served models over the /v1 API, streamed, each answer
// with its ledger receipt verified in the browser. Everything shown that came from a model, a user
// or an imported file is set as text (markdown goes through markdown.js, which builds DOM nodes
// only): the page never turns content into HTML.

import { API, APIError, describeError } from "./api.js";
import { setUpModelExport } from "./export.js";
import { render as renderMarkdown } from "./markdown.js";
import { verifyReceipt } from "./receipt.js";
import { Store, newID } from "./store.js";

const $ = id => document.getElementById(id);
const store = new Store();
const api = new API(() => store.settings.apiKey);

const ui = {
    app: $("app"), sidebar: $("sidebar"), scrim: $("scrim"), list: $("conversations"), messages: $("messages"),
    empty: $("empty"), title: $("title"), model: $("model"), composer: $("composer"), prompt: $("prompt"),
    send: $("send"), stop: $("stop"), status: $("status"), settings: $("settings"), toggleSettings: $("toggle-settings"),
    system: $("system"), temperature: $("temperature"), top_p: $("top_p"), max_tokens: $("max_tokens"), seed: $("seed"),
    keyDialog: $("key-dialog"), keyInput: $("api-key"), keyReason: $("key-reason"),
    receiptDialog: $("receipt-dialog"),
};
const PARAM_FIELDS = ["temperature", "top_p", "max_tokens", "seed"];

let models = [];
// Each LoRA adapter's base model (GET /v1/models `parent`), by adapter id.
let parents = {};
// The served models' own sampling defaults (GET /v1/models `sampling_defaults`), by model id.
let modelDefaults = {};
let current = store.get(store.settings.currentID);
/** The answer being generated: {controller, conversation, message}. */
let streaming = null;
/** Verification results by record id, for the receipt dialog. */
const verifications = new Map();

// ---- Status line -----------------------------------------------------------------------------

let statusTimer = null;
function say(text, { sticky = false } = {}) {
    ui.status.textContent = text;
    clearTimeout(statusTimer);
    if (!sticky) statusTimer = setTimeout(() => { ui.status.textContent = store.saveError || ""; }, 4000);
}

function save() {
    store.save();
    if (store.saveError) say(store.saveError, { sticky: true });
}

// ---- Models and the API key ------------------------------------------------------------------

async function loadModels() {
    try {
        const listed = await api.models();
        models = listed.map(m => m.id);
        parents = Object.fromEntries(listed.filter(m => m.parent).map(m => [m.id, m.parent]));
        modelDefaults = Object.fromEntries(listed.map(m => [m.id, m.sampling_defaults || null]));
    } catch (error) {
        if (error instanceof APIError && error.status === 401) {
            openKeyDialog(store.settings.apiKey ? "The saved API key was refused. Enter a valid key." : "This server asks for an API key. It is kept in this browser only.");
        }
        say(describeError(error), { sticky: true });
        models = [];
        parents = {};
    }
    renderModelPicker();
}

function renderModelPicker() {
    const wanted = current?.model || store.settings.model || models[0] || "";
    ui.model.replaceChildren();
    const ids = models.includes(wanted) || !wanted ? models : [...models, wanted];
    const option = (id, text) => {
        const element = document.createElement("option");
        element.value = id;
        element.textContent = text;
        return element;
    };
    // Base models in order; a base with LoRA adapters becomes a group: the base, then its adapters.
    for (const id of ids.filter(id => !parents[id])) {
        const adapters = ids.filter(a => parents[a] === id);
        const text = models.includes(id) ? id : `${id} (not served now)`;
        if (!adapters.length) { ui.model.append(option(id, text)); continue; }
        const group = document.createElement("optgroup");
        group.label = `${id} and its adapters`;
        group.append(option(id, `${text} (base)`), ...adapters.map(a => option(a, `${a} (LoRA on ${id})`)));
        ui.model.append(group);
    }
    if (!ids.length) {
        const option = document.createElement("option");
        option.value = "";
        option.textContent = "no models";
        ui.model.append(option);
    }
    ui.model.value = wanted;
    showModelDefaults();
}

// An empty temperature / top_p field leaves the choice to the server, which uses the model's own
// recommendation: say what that is, and where it comes from.
function showModelDefaults() {
    const defaults = modelDefaults[ui.model.value];
    for (const key of ["temperature", "top_p"]) {
        const value = defaults?.[key];
        ui[key].placeholder = value === undefined ? "model default" : `model default: ${value}`;
        ui[key].title = value === undefined ? "" : `from the model's ${defaults.source}`;
    }
}

function openKeyDialog(reason) {
    ui.keyReason.textContent = reason || "The API key this browser sends to the server. It is kept in this browser only.";
    ui.keyInput.value = store.settings.apiKey || "";
    if (!ui.keyDialog.open) ui.keyDialog.showModal();
    ui.keyInput.focus();
}

// ---- Settings (per conversation; new chats start from the last used) -------------------------

function controlsFrom(source) {
    ui.system.value = source.system || "";
    for (const key of PARAM_FIELDS) ui[key].value = source.params?.[key] ?? "";
}

function readControls() {
    const params = {};
    for (const key of PARAM_FIELDS) {
        const text = ui[key].value.trim();
        if (text === "") continue;
        const value = Number(text);
        if (!Number.isFinite(value)) throw new Error(`${key} must be a number`);
        params[key] = key === "max_tokens" || key === "seed" ? Math.trunc(value) : value;
    }
    return { model: ui.model.value, system: ui.system.value, params };
}

function settingsChanged() {
    let values;
    try { values = readControls(); } catch (error) { say(error.message); return; }
    store.settings.model = values.model;
    store.settings.system = values.system;
    store.settings.params = values.params;
    if (current) Object.assign(current, values);
    save();
}

// ---- Sidebar ---------------------------------------------------------------------------------

/** A <button type="button"> with a class, a data-action (handled by delegation), its text, and an
 * aria-label when the text alone does not say what it does. */
function actionButton(className, action, text, label) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = className;
    button.dataset.action = action;
    button.textContent = text;
    if (label) button.setAttribute("aria-label", label);
    return button;
}

function renderSidebar() {
    ui.list.replaceChildren(...store.sorted().map(conversation => {
        const li = document.createElement("li");
        li.className = "conversation";
        li.dataset.id = conversation.id;
        if (conversation === current) li.setAttribute("aria-current", "true");
        const open = actionButton("conversation-open", "open", conversation.title);
        open.title = conversation.title;
        li.append(open, actionButton("icon-button", "rename", "✎", `Rename “${conversation.title}”`),
                  actionButton("icon-button", "delete", "×", `Delete “${conversation.title}”`));
        return li;
    }));
}

function openConversation(conversation) {
    if (streaming && streaming.conversation !== conversation) stopGenerating();
    current = conversation;
    store.settings.currentID = conversation?.id ?? null;
    save();
    controlsFrom(conversation || store.settings);
    renderModelPicker();
    renderSidebar();
    renderConversation();
    closeSidebar();
    verifyUnchecked(conversation);
}

/** Checks the receipts of a conversation's answers that were never checked (imported, or the page
 * closed while checking). */
function verifyUnchecked(conversation) {
    for (const message of conversation?.messages || []) {
        const state = message.record?.state;
        if (message.record?.id && state !== "verified" && state !== "failed" && state !== "verifying" && streaming?.message !== message) {
            verify(message, conversation);
        }
    }
}

function startRename(li) {
    const conversation = store.get(li.dataset.id);
    if (!conversation) return;
    const input = document.createElement("input");
    input.className = "rename";
    input.value = conversation.title;
    input.setAttribute("aria-label", "New title");
    li.replaceChildren(input);
    input.focus();
    input.select();
    let done = false;
    const finish = commit => {
        if (done) return;
        done = true;
        const title = input.value.trim();
        if (commit && title) {
            conversation.title = title.slice(0, 200);
            save();
        }
        renderSidebar();
        if (conversation === current) ui.title.textContent = conversation.title;
    };
    input.addEventListener("keydown", event => {
        if (event.key === "Enter") { event.preventDefault(); finish(true); }
        if (event.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(true));
}

function confirmDelete(button, li) {
    if (button.dataset.armed !== "true") {
        button.dataset.armed = "true";
        button.textContent = "Delete?";
        setTimeout(() => { if (button.isConnected) { button.dataset.armed = "false"; button.textContent = "×"; } }, 3000);
        return;
    }
    const conversation = store.get(li.dataset.id);
    if (!conversation) return;
    if (streaming?.conversation === conversation) stopGenerating();
    store.remove(conversation.id);
    save();
    if (current === conversation) openConversation(null);
    else renderSidebar();
    say(`Deleted “${conversation.title}”.`);
}

function openSidebar() { ui.app.classList.add("sidebar-open"); ui.scrim.hidden = false; }
function closeSidebar() { ui.app.classList.remove("sidebar-open"); ui.scrim.hidden = true; }

// ---- Messages --------------------------------------------------------------------------------

function renderConversation() {
    ui.title.textContent = current?.title || "New chat";
    const views = (current?.messages || []).map(messageView);
    ui.messages.replaceChildren(...(views.length ? views : [ui.empty]));
    ui.messages.scrollTop = ui.messages.scrollHeight;
}

function lastAssistant(conversation) {
    const last = conversation?.messages.at(-1);
    return last?.role === "assistant" ? last : null;
}

function messageView(message) {
    const article = document.createElement("article");
    article.className = `message ${message.role}`;
    article.dataset.id = message.id;
    article.dataset.role = message.role;
    const generating = streaming?.message === message;
    if (generating) article.dataset.streaming = "true";

    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const content = document.createElement("div");
    content.className = "content";
    if (message.role === "user") content.textContent = message.content;
    else content.append(renderMarkdown(message.content));
    bubble.append(content);
    if (generating && !message.content) {
        const dots = document.createElement("span");
        dots.className = "typing";
        dots.setAttribute("aria-label", "generating");
        bubble.append(dots);
    }
    if (message.error) {
        const error = document.createElement("p");
        error.className = "error";
        error.setAttribute("role", "alert");
        error.textContent = message.error;
        bubble.append(error);
    }
    article.append(bubble);

    if (message.role === "assistant") article.append(metaView(message));
    if (!generating) article.append(actionsView(message));
    return article;
}

function metaView(message) {
    const meta = document.createElement("div");
    meta.className = "meta";
    const parts = [];
    if (message.model) parts.push(message.model);
    const p = message.params || {};
    if (p.temperature !== undefined) parts.push(`temperature ${p.temperature}`);
    if (p.top_p !== undefined) parts.push(`top_p ${p.top_p}`);
    if (p.max_tokens !== undefined) parts.push(`max ${p.max_tokens}`);
    if (p.seed !== undefined) parts.push(`seed ${p.seed}`);
    if (message.usage?.completion_tokens !== undefined) parts.push(`${message.usage.completion_tokens} tokens`);
    if (message.stopped) parts.push("stopped");
    else if (message.finishReason === "length") parts.push("cut at max tokens");
    const facts = document.createElement("span");
    facts.className = "facts";
    facts.textContent = parts.join(" · ");
    meta.append(facts);
    if (message.servedBy) meta.append(servedByView(message.servedBy));
    if (message.record?.id) meta.append(receiptBadge(message));
    return meta;
}

/** An amount of money: two decimals, or two significant digits below a cent. */
function money(value, currency) {
    if (typeof value !== "number" || !isFinite(value)) return "";
    const digits = value >= 0.01 || value === 0 ? value.toFixed(2) : value.toPrecision(2);
    return `${digits} ${currency || ""}`.trim();
}

/** Who served an answer on a fleet (the gateway's `served_by`): provider, GPU, price, cost. */
function servedByView(served) {
    const span = document.createElement("span");
    span.className = "served-by";
    const parts = [served.provider, served.gpu, `${money(served.price_per_hour, served.currency)}/h`];
    if (served.cost !== null && served.cost !== undefined) parts.push(`cost ${money(served.cost, served.currency)}`);
    span.textContent = parts.filter(Boolean).join(" · ");
    span.title = served.worker ? `Served by worker ${served.worker}` : "Served by this server's own engine";
    return span;
}

function receiptBadge(message) {
    const record = message.record;
    const badge = actionButton("receipt", "receipt", "");
    badge.dataset.recordId = record.id;
    const state = record.state || "pending";
    badge.dataset.state = state;
    const short = record.id.length > 18 ? `${record.id.slice(0, 9)}…${record.id.slice(-6)}` : record.id;
    const label = {
        pending: "recording…",
        verifying: "verifying…",
        verified: `block ${record.block} · verified ✓${record.method === "server" ? " (signature by server)" : ""}`,
        failed: "verification FAILED ✗",
        unavailable: "receipt unavailable",
    }[state] || state;
    badge.textContent = `Ledger ${short} · ${label}`;
    badge.title = `Ledger record ${record.id}: show and verify its receipt`;
    return badge;
}

function actionsView(message) {
    const actions = document.createElement("div");
    actions.className = "actions";
    const add = (action, label) => actions.append(actionButton("link-button", action, label));
    if (message.content) add("copy", "Copy");
    if (message.role === "user") add("edit", "Edit");
    if (message.role === "assistant" && message === lastAssistant(current)) add("regenerate", "Regenerate");
    return actions;
}

function replaceView(message) {
    const old = ui.messages.querySelector(`article[data-id="${CSS.escape(message.id)}"]`);
    const view = messageView(message);
    if (old) old.replaceWith(view);
    else if (current?.messages.includes(message)) {
        ui.empty.remove();
        ui.messages.append(view);
    }
}

function nearBottom() {
    return ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 80;
}

// Re-rendering the streaming answer at most every 50 ms keeps long answers cheap.
let renderTimer = null;
function scheduleRender(message) {
    if (renderTimer) return;
    renderTimer = setTimeout(() => {
        renderTimer = null;
        const stick = nearBottom();
        replaceView(message);
        if (stick) ui.messages.scrollTop = ui.messages.scrollHeight;
    }, 50);
}

// ---- Sending, stopping, regenerating, editing ------------------------------------------------

async function send(text) {
    if (streaming || !text.trim()) return;
    let values;
    try { values = readControls(); } catch (error) { say(error.message); return; }
    if (!values.model) { say("No model to send to: the server lists none, or the API key is missing."); return; }
    if (!current) {
        current = store.create(values);
        store.settings.currentID = current.id;
    }
    current.messages.push({ id: newID("m_"), role: "user", content: text, createdAt: Date.now() });
    if (current.title === "New chat") current.title = text.trim().split("\n")[0].slice(0, 60);
    ui.prompt.value = "";
    autosize();
    await generate(current);
}

async function generate(conversation) {
    const values = readControls();
    Object.assign(conversation, values);
    conversation.updatedAt = Date.now();
    const message = {
        id: newID("m_"), role: "assistant", content: "", createdAt: Date.now(),
        model: values.model, system: values.system, params: { ...values.params },
    };
    const history = conversation.messages.filter(m => m.content && !(m.role === "assistant" && m.error && !m.content));
    conversation.messages.push(message);
    const body = {
        model: values.model,
        messages: [
            ...(values.system.trim() ? [{ role: "system", content: values.system }] : []),
            ...history.map(m => ({ role: m.role, content: m.content })),
        ],
        ...values.params,
    };
    streaming = { controller: new AbortController(), conversation, message };
    setBusy(true);
    save();
    renderSidebar();
    renderConversation();
    try {
        const result = await api.streamChat(body, {
            signal: streaming.controller.signal,
            onStart: id => { message.record = { id }; scheduleRender(message); },
            onDelta: delta => { message.content += delta; scheduleRender(message); },
        });
        message.content = result.text;
        message.finishReason = result.finishReason;
        message.usage = result.usage ? { prompt_tokens: result.usage.prompt_tokens, completion_tokens: result.usage.completion_tokens } : undefined;
        if (result.verity) {
            message.record = { id: result.verity.record_id, leafHash: result.verity.leaf_hash, leafIndex: result.verity.leaf_index, state: "pending" };
            if (result.verity.served_by) message.servedBy = result.verity.served_by;
        }
    } catch (error) {
        if (error.name === "AbortError") {
            message.stopped = true;
        } else {
            message.error = describeError(error);
            if (!message.content) delete message.record;
            if (error instanceof APIError && error.status === 401) openKeyDialog("The server refused the API key. Enter a valid key, then resend.");
        }
    } finally {
        clearTimeout(renderTimer);
        renderTimer = null;
        streaming = null;
        setBusy(false);
        conversation.updatedAt = Date.now();
        save();
        if (conversation === current) {
            const stick = nearBottom();
            renderConversation();
            if (!stick) ui.messages.scrollTop = ui.messages.scrollHeight;
        }
    }
    // A stopped answer is recorded (as cancelled) once the server sees the client leave.
    if (message.record?.id) verify(message, conversation, { retries: message.stopped ? 10 : 2 });
}

function stopGenerating() {
    streaming?.controller.abort();
}

function setBusy(busy) {
    ui.send.hidden = busy;
    ui.stop.hidden = !busy;
    ui.app.dataset.busy = busy ? "true" : "false";
}

function regenerate() {
    if (streaming || !current) return;
    const last = lastAssistant(current);
    if (last) current.messages.pop();
    generate(current);
}

function startEdit(article, message) {
    if (streaming) return;
    const bubble = article.querySelector(".bubble");
    const editor = document.createElement("form");
    editor.className = "editor";
    const area = document.createElement("textarea");
    area.value = message.content;
    area.rows = Math.min(12, message.content.split("\n").length + 1);
    area.setAttribute("aria-label", "Edit message");
    const submit = document.createElement("button");
    submit.type = "submit";
    submit.className = "button primary";
    submit.textContent = "Save & send";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "button";
    cancel.textContent = "Cancel";
    editor.append(area, submit, cancel);
    bubble.replaceChildren(editor);
    article.querySelector(".actions")?.remove();
    area.focus();
    cancel.addEventListener("click", () => replaceView(message));
    area.addEventListener("keydown", event => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); editor.requestSubmit(); }
        if (event.key === "Escape") replaceView(message);
    });
    editor.addEventListener("submit", event => {
        event.preventDefault();
        const text = area.value;
        if (!text.trim()) return;
        const index = current.messages.indexOf(message);
        message.content = text;
        current.messages = current.messages.slice(0, index + 1);
        generate(current);
    });
}

// ---- Receipts --------------------------------------------------------------------------------

async function verify(message, conversation, { retries = 0 } = {}) {
    const record = message.record;
    record.state = "verifying";
    if (conversation === current) replaceView(message);
    for (let attempt = 0; ; attempt++) {
        try {
            const result = await verifyReceipt(api, record.id, record.leafHash);
            verifications.set(record.id, result);
            record.state = result.ok ? "verified" : "failed";
            record.block = result.block?.height;
            record.method = result.method;
            if (record.leafIndex === undefined) record.leafIndex = result.receipt.leafIndex;
            break;
        } catch (error) {
            // Not recorded yet (a stopped answer) or not reachable: try again a little later.
            if (attempt < retries && error instanceof APIError && (error.status === 404 || error.status === 0 || error.status === 409)) {
                await new Promise(resolve => setTimeout(resolve, 500 * (attempt + 1)));
                continue;
            }
            verifications.set(record.id, { error: describeError(error) });
            record.state = "unavailable";
            break;
        }
    }
    save();
    if (conversation === current && !(streaming?.message === message)) replaceView(message);
    if (ui.receiptDialog.open && ui.receiptDialog.dataset.recordId === record.id) showReceipt(message);
}

function showReceipt(message) {
    const record = message.record;
    const dialog = ui.receiptDialog;
    dialog.dataset.recordId = record.id;
    const result = verifications.get(record.id);
    const verdict = $("receipt-verdict");
    const checks = $("receipt-checks");
    const facts = $("receipt-facts");
    checks.replaceChildren();
    facts.replaceChildren();
    dialog.dataset.state = record.state || "pending";
    if (!result) {
        verdict.textContent = record.state === "verifying" ? "Verifying…" : "Not verified yet.";
    } else if (result.error) {
        verdict.textContent = result.error;
    } else {
        verdict.textContent = result.ok
            ? (result.method === "browser" ? "Verified in this browser: hashes with Web Crypto SHA-256, the block's signature with Web Crypto Ed25519."
                : "Verified: hashes in this browser (Web Crypto SHA-256); the signature by the server, since this browser has no Ed25519 in Web Crypto.")
            : "This receipt does NOT verify. See the failed check below.";
        for (const c of result.checks) {
            const li = document.createElement("li");
            li.dataset.ok = String(c.ok);
            const name = document.createElement("strong");
            name.textContent = `${c.ok ? "✓" : "✗"} ${c.name}: `;
            li.append(name, document.createTextNode(c.detail));
            if (c.name === "Node key" && !c.ok) {
                const trust = document.createElement("button");
                trust.type = "button";
                trust.className = "link-button";
                trust.textContent = "Trust the new key";
                trust.addEventListener("click", () => {
                    localStorage.removeItem(`verity.node-key.${location.origin}`);
                    verify(message, current);
                });
                li.append(" ", trust);
            }
            checks.append(li);
        }
        $("receipt-json").textContent = JSON.stringify(result.receipt, null, 2);
    }
    const add = (term, value) => {
        if (value === undefined || value === null || value === "") return;
        const dt = document.createElement("dt");
        dt.textContent = term;
        const dd = document.createElement("dd");
        dd.textContent = String(value);
        facts.append(dt, dd);
    };
    add("Record", record.id);
    const served = message.servedBy;
    if (served) {
        add("Served by", served.worker ? `worker ${served.worker}` : "this server's engine");
        add("Provider", served.provider);
        add("GPU", served.gpu);
        add("Price", `${money(served.price_per_hour, served.currency)} per hour`);
        if (served.cost !== null && served.cost !== undefined) add("Cost", money(served.cost, served.currency));
    }
    add("Leaf index", record.leafIndex);
    add("Leaf hash", record.leafHash || result?.receipt?.leafHash);
    add("Block", result?.block ? `${result.block.height} (tree of ${result.block.size}, root ${result.block.root})` : undefined);
    add("Recorded", result?.record ? `${new Date(result.record.timestamp).toISOString()} by node ${result.record.nodeID}` : undefined);
    add("Node key", result?.nodeKey);
    if (!dialog.open) dialog.showModal();
}

// ---- Export and import -----------------------------------------------------------------------

function exportConversations() {
    const blob = new Blob([store.exportJSON()], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = `verity-chats-${new Date().toISOString().slice(0, 10)}.json`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    say(`Exported ${store.conversations.length} conversation(s).`);
}

async function importConversations(file) {
    try {
        const count = store.importJSON(await file.text());
        save();
        renderSidebar();
        const newest = store.sorted()[0];
        if (count && newest) openConversation(newest);
        say(count ? `Imported ${count} conversation(s).` : "Nothing new to import.");
    } catch (error) {
        say(`Cannot import ${file.name}: ${error.message}`, { sticky: true });
    }
}

// ---- Copying ---------------------------------------------------------------------------------

async function copyText(text, button) {
    try {
        if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(text);
        else {
            // Plain-http origins have no Clipboard API: the old way.
            const area = document.createElement("textarea");
            area.value = text;
            area.style.position = "fixed";
            area.style.opacity = "0";
            document.body.append(area);
            area.select();
            document.execCommand("copy");
            area.remove();
        }
        const label = button.textContent;
        button.textContent = "Copied";
        setTimeout(() => { button.textContent = label; }, 1200);
    } catch (error) {
        say(`Cannot copy: ${error.message}`);
    }
}

// ---- Wiring ----------------------------------------------------------------------------------

function autosize() {
    ui.prompt.style.height = "auto";
    const height = ui.prompt.scrollHeight + 2;
    ui.prompt.style.height = `${Math.min(height, 240)}px`;
    ui.prompt.style.overflowY = height > 240 ? "auto" : "hidden";
}

function messageOf(article) {
    return current?.messages.find(m => m.id === article?.dataset.id) || null;
}

function wire() {
    ui.composer.addEventListener("submit", event => { event.preventDefault(); send(ui.prompt.value); });
    ui.prompt.addEventListener("keydown", event => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            ui.composer.requestSubmit();
        }
    });
    ui.prompt.addEventListener("input", autosize);
    ui.stop.addEventListener("click", stopGenerating);
    document.addEventListener("keydown", event => {
        if (event.key === "Escape" && streaming && !document.querySelector("dialog[open]")) stopGenerating();
    });

    $("new-chat").addEventListener("click", () => { openConversation(null); ui.prompt.focus(); });
    $("open-sidebar").addEventListener("click", openSidebar);
    $("close-sidebar").addEventListener("click", closeSidebar);
    ui.scrim.addEventListener("click", closeSidebar);
    ui.list.addEventListener("click", event => {
        const button = event.target.closest("button[data-action]");
        const li = event.target.closest("li.conversation");
        if (!button || !li) return;
        if (button.dataset.action === "open") openConversation(store.get(li.dataset.id));
        if (button.dataset.action === "rename") startRename(li);
        if (button.dataset.action === "delete") confirmDelete(button, li);
    });

    ui.toggleSettings.addEventListener("click", () => {
        ui.settings.hidden = !ui.settings.hidden;
        ui.toggleSettings.setAttribute("aria-expanded", String(!ui.settings.hidden));
    });
    for (const input of [ui.system, ...PARAM_FIELDS.map(k => ui[k])]) input.addEventListener("change", settingsChanged);
    ui.model.addEventListener("change", () => { showModelDefaults(); settingsChanged(); });
    $("reset-settings").addEventListener("click", () => {
        controlsFrom({ system: "", params: {} });
        settingsChanged();
    });

    ui.messages.addEventListener("click", event => {
        const button = event.target.closest("button[data-action]");
        if (!button) return;
        const article = button.closest("article.message");
        const message = messageOf(article);
        switch (button.dataset.action) {
        case "copy-code": copyText(button.closest(".code-block").querySelector("code").textContent, button); break;
        case "copy": if (message) copyText(message.content, button); break;
        case "edit": if (message) startEdit(article, message); break;
        case "regenerate": regenerate(); break;
        case "receipt":
            if (!message?.record) break;
            showReceipt(message);
            if (!verifications.has(message.record.id) && message.record.state !== "verifying") verify(message, current);
            break;
        }
    });

    $("export").addEventListener("click", exportConversations);
    $("import-file").addEventListener("change", event => {
        const file = event.target.files[0];
        event.target.value = "";
        if (file) importConversations(file);
    });

    $("open-key").addEventListener("click", () => openKeyDialog());
    $("key-form").addEventListener("submit", event => {
        event.preventDefault();
        store.settings.apiKey = ui.keyInput.value.trim();
        save();
        ui.keyDialog.close();
        say(store.settings.apiKey ? "API key saved in this browser." : "No API key.");
        loadModels();
    });
    $("key-cancel").addEventListener("click", () => ui.keyDialog.close());
    $("key-clear").addEventListener("click", () => {
        store.settings.apiKey = "";
        save();
        ui.keyDialog.close();
        say("API key forgotten.");
        loadModels();
    });
    $("receipt-close").addEventListener("click", () => ui.receiptDialog.close());
    $("receipt-recheck").addEventListener("click", () => {
        const message = current?.messages.find(m => m.record?.id === ui.receiptDialog.dataset.recordId);
        if (message) { verifications.delete(message.record.id); verify(message, current); showReceipt(message); }
    });
    window.addEventListener("storage", event => {
        // Another tab changed the history: pick it up when idle.
        if (event.key === "verity.conversations.v1" && !streaming) {
            const id = current?.id;
            const fresh = new Store();
            store.conversations = fresh.conversations;
            current = store.get(id);
            renderSidebar();
            renderConversation();
        }
    });
}

wire();
setUpModelExport(api, { selected: () => ({ id: ui.model.value, parent: parents[ui.model.value] }), say });
autosize();
controlsFrom(current || store.settings);
renderSidebar();
renderConversation();
setBusy(false);
loadModels();
for (const message of current?.messages || []) if (message.record?.state === "verifying") message.record.state = "pending";
verifyUnchecked(current);
document.documentElement.dataset.ready = "true";
