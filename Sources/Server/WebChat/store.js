// Conversations and settings, persisted in this browser's localStorage.
//
// A conversation: {id, title, createdAt, updatedAt, model, system, params: {temperature, top_p,
// max_tokens, seed}, messages: [message]}. A message: {id, role: "user"|"assistant", content,
// createdAt}; an assistant message also keeps what it was generated with and what came back:
// {model, system, params, finishReason, usage, record: {id, leafHash, leafIndex, state, block,
// method}, error, stopped}. An imported record keeps only its id, leaf hash and index: whether it
// verifies is found out again here, never taken from a file.
// Export and import use {"format": "verity-chat", "version": 1, "conversations": [...]}.

const CONVERSATIONS = "verity.conversations.v1";
const SETTINGS = "verity.settings.v1";
export const FORMAT = "verity-chat";
const PARAMS = ["temperature", "top_p", "max_tokens", "seed"];

export function newID(prefix) {
    const bytes = crypto.getRandomValues(new Uint8Array(9));
    return prefix + Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
}

export class Store {
    constructor(storage = localStorage) {
        this.storage = storage;
        this.conversations = this.read(CONVERSATIONS, []).filter(c => c && Array.isArray(c.messages));
        this.settings = { apiKey: "", model: "", system: "", params: {}, currentID: null, ...this.read(SETTINGS, {}) };
        this.saveError = null;
    }

    read(key, fallback) {
        try {
            const text = this.storage.getItem(key);
            return text ? JSON.parse(text) : fallback;
        } catch {
            return fallback;
        }
    }

    /** Writes everything; a full storage is reported (saveError), never fatal. */
    save() {
        try {
            this.storage.setItem(CONVERSATIONS, JSON.stringify(this.conversations));
            this.storage.setItem(SETTINGS, JSON.stringify(this.settings));
            this.saveError = null;
        } catch (error) {
            this.saveError = `This browser's storage is full; the latest changes are not saved (${error.name}). Export and delete old conversations.`;
        }
    }

    /** Conversations, most recently updated first. */
    sorted() {
        return [...this.conversations].sort((a, b) => b.updatedAt - a.updatedAt);
    }

    get(id) {
        return this.conversations.find(c => c.id === id) || null;
    }

    create({ model, system, params }) {
        const now = Date.now();
        const conversation = { id: newID("c_"), title: "New chat", createdAt: now, updatedAt: now, model, system, params: { ...params }, messages: [] };
        this.conversations.push(conversation);
        return conversation;
    }

    remove(id) {
        this.conversations = this.conversations.filter(c => c.id !== id);
        if (this.settings.currentID === id) this.settings.currentID = null;
    }

    exportJSON(ids = null) {
        const chosen = ids ? this.conversations.filter(c => ids.includes(c.id)) : this.sorted();
        return JSON.stringify({ format: FORMAT, version: 1, exportedAt: new Date().toISOString(), conversations: chosen }, null, 2);
    }

    /**
     * Imports conversations from exported JSON (or a bare array of conversations). Conversations
     * already here (same id, same content) are skipped; a clash of ids with different content
     * gets a new id. Returns the number imported; throws with a reason for unreadable input.
     */
    importJSON(text) {
        let data;
        try { data = JSON.parse(text); } catch (error) { throw new Error(`the file is not JSON (${error.message})`); }
        const list = Array.isArray(data) ? data : data?.conversations;
        if (!Array.isArray(list)) throw new Error(`the file is not a Verity chat export (no "conversations" list)`);
        if (!Array.isArray(data) && data.format !== undefined && data.format !== FORMAT) throw new Error(`unknown format "${data.format}"`);
        const imported = list.map((c, i) => sanitizeConversation(c, i));
        let count = 0;
        for (const conversation of imported) {
            const existing = this.get(conversation.id);
            if (existing && sameMessages(existing, conversation)) continue;
            if (existing) conversation.id = newID("c_");
            this.conversations.push(conversation);
            count++;
        }
        return count;
    }
}

/** Whether two conversations hold the same messages (ids, roles and texts). */
function sameMessages(a, b) {
    const key = c => JSON.stringify(c.messages.map(m => [m.id, m.role, m.content]));
    return key(a) === key(b);
}

const text = (value, max = 1 << 20) => typeof value === "string" ? value.slice(0, max) : "";
const finite = value => typeof value === "number" && Number.isFinite(value) ? value : undefined;

function sanitizeParams(params) {
    const out = {};
    for (const key of PARAMS) {
        const v = finite(params?.[key]);
        if (v !== undefined) out[key] = v;
    }
    return out;
}

/** Keeps only the known fields, with their types checked: an import is untrusted input too. */
function sanitizeConversation(c, index) {
    if (!c || typeof c !== "object" || !Array.isArray(c.messages)) {
        throw new Error(`conversation ${index + 1} has no "messages" list`);
    }
    const now = Date.now();
    const messages = c.messages.map((m, j) => {
        if (!m || (m.role !== "user" && m.role !== "assistant") || typeof m.content !== "string") {
            throw new Error(`conversation ${index + 1}, message ${j + 1}: needs a role "user" or "assistant" and a text content`);
        }
        const message = { id: typeof m.id === "string" && m.id ? text(m.id, 64) : newID("m_"), role: m.role, content: text(m.content), createdAt: finite(m.createdAt) ?? now };
        if (m.role === "assistant") {
            if (typeof m.model === "string") message.model = text(m.model, 256);
            if (typeof m.system === "string") message.system = text(m.system);
            if (m.params) message.params = sanitizeParams(m.params);
            if (typeof m.finishReason === "string") message.finishReason = text(m.finishReason, 32);
            if (m.stopped === true) message.stopped = true;
            if (typeof m.error === "string") message.error = text(m.error, 4096);
            if (m.record && typeof m.record.id === "string") {
                message.record = { id: text(m.record.id, 128) };
                if (typeof m.record.leafHash === "string") message.record.leafHash = text(m.record.leafHash, 64);
                if (finite(m.record.leafIndex) !== undefined) message.record.leafIndex = m.record.leafIndex;
            }
            if (m.usage && typeof m.usage === "object") {
                message.usage = { prompt_tokens: finite(m.usage.prompt_tokens), completion_tokens: finite(m.usage.completion_tokens) };
            }
        }
        return message;
    });
    return {
        id: typeof c.id === "string" && c.id ? text(c.id, 64) : newID("c_"),
        title: text(c.title, 200) || "Imported chat",
        createdAt: finite(c.createdAt) ?? now,
        updatedAt: finite(c.updatedAt) ?? now,
        model: text(c.model, 256),
        system: text(c.system),
        params: sanitizeParams(c.params),
        messages,
    };
}
