// The page's client for this server's OpenAI-compatible API: the same /v1 endpoints any SDK uses.

/** An error answer from the server, or a failure to reach it. */
export class APIError extends Error {
    constructor(status, message, { code = null, type = null, retryAfter = null } = {}) {
        super(message);
        this.status = status;
        this.code = code;
        this.type = type;
        this.retryAfter = retryAfter;
    }
}

export class API {
    constructor(getKey) {
        this.getKey = getKey;
    }

    headers(extra = {}) {
        const key = this.getKey();
        return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
    }

    async request(path, init = {}) {
        let response;
        try {
            response = await fetch(path, { ...init, headers: this.headers(init.headers) });
        } catch (error) {
            if (error.name === "AbortError") throw error;
            throw new APIError(0, "Cannot reach the server. Is `verity serve` still running?");
        }
        if (!response.ok) throw await errorFrom(response);
        return response;
    }

    async get(path) {
        return (await this.request(path)).json();
    }

    async post(path, body) {
        return (await this.request(path, {
            method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        })).json();
    }

    async models() {
        return (await this.get("/v1/models")).data;
    }

    /**
     * Streams a chat completion. Calls `onDelta(text)` as tokens arrive and `onStart(recordID)`
     * once the response begins. Resolves with {text, finishReason, usage, verity, recordID};
     * an abort through `signal` rejects with an AbortError.
     */
    async streamChat(body, { signal, onDelta, onStart }) {
        const response = await this.request("/v1/chat/completions", {
            method: "POST", signal,
            headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
            body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
        });
        const recordID = response.headers.get("X-Verity-Record");  // also each chunk's id
        if (recordID) onStart?.(recordID);
        const result = { text: "", finishReason: null, usage: null, verity: null, recordID };
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        let done = false;
        while (!done) {
            const { value, done: ended } = await reader.read();
            if (ended) break;
            buffer += decoder.decode(value, { stream: true });
            let cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
                const event = buffer.slice(0, cut);
                buffer = buffer.slice(cut + 2);
                const data = event.split("\n").filter(l => l.startsWith("data:")).map(l => l.slice(5).trimStart()).join("\n");
                if (!data) continue;
                if (data === "[DONE]") { done = true; break; }
                let chunk;
                try { chunk = JSON.parse(data); } catch { throw new APIError(502, "The server sent an unreadable stream event."); }
                if (chunk.error) {
                    throw new APIError(500, chunk.error.message || "The generation failed.", { code: chunk.error.code, type: chunk.error.type });
                }
                if (!result.recordID && chunk.id) {
                    result.recordID = chunk.id;
                    onStart?.(chunk.id);
                }
                const choice = chunk.choices?.[0];
                const delta = choice?.delta?.content;
                if (delta) {
                    result.text += delta;
                    onDelta(delta);
                }
                if (choice?.finish_reason) result.finishReason = choice.finish_reason;
                if (chunk.usage) result.usage = chunk.usage;
                if (chunk.verity) result.verity = chunk.verity;
            }
        }
        if (!done) throw new APIError(502, "The stream ended before the answer was complete.");
        return result;
    }
}

async function errorFrom(response) {
    let message = `${response.status} ${response.statusText}`;
    let code = null, type = null;
    try {
        const body = await response.json();
        if (body?.error?.message) {
            message = body.error.message;
            code = body.error.code ?? null;
            type = body.error.type ?? null;
        }
    } catch { /* not JSON: keep the status line */ }
    const retry = response.headers.get("Retry-After");
    return new APIError(response.status, message, { code, type, retryAfter: retry ? Number(retry) : null });
}

/** A message for people, from an API error. */
export function describeError(error) {
    if (!(error instanceof APIError)) return `Something went wrong: ${error.message || error}`;
    switch (error.status) {
    case 0: return error.message;
    case 401: return `The server refused the API key (401): ${error.message} Enter a key with “API key”.`;
    case 413: return `The conversation is too large to send (413): ${error.message}`;
    case 429:
        if (error.code === "rate_limit_exceeded") return `This API key's rate limit is reached (429): ${error.message}`;
        return `The server is busy (429): ${error.message}${error.retryAfter ? ` Try again in ${error.retryAfter} s.` : ""}`;
    case 503:
        if (error.code === "ledger_unavailable") return `The server cannot record conversations right now, so it answers none (503): ${error.message}`;
        return `The server is not ready (503): ${error.message}`;
    }
    if (error.code === "context_length_exceeded") {
        return `Too long for the model's context: ${error.message} Start a new chat, shorten the conversation, or lower Max tokens.`;
    }
    return `The server answered ${error.status || "with an error"}: ${error.message}`;
}
