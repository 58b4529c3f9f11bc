// An independent MCP client (the official TypeScript SDK) against steward's gateway.
// usage: GATEWAY_URL=... TOKEN=... node client.mjs list | call TOOL JSON_ARGS | raw BODY
// Prints one JSON line: what the gateway answered (or the error the client raised).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = new URL(process.env.GATEWAY_URL);
const token = process.env.TOKEN;
const [command, ...rest] = process.argv.slice(2);

async function connected() {
  const transport = new StreamableHTTPClientTransport(url, {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: "steward-node-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

async function main() {
  if (command === "raw") {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${token}`,
        "Content-Type": "application/json",
        Accept: "application/json, text/event-stream",
      },
      body: rest[0],
    });
    return { status: response.status, body: await response.text() };
  }
  let client;
  try {
    client = await connected();
    if (command === "list") {
      const listed = await client.listTools();
      return { tools: listed.tools };
    }
    if (command === "call") {
      return await client.callTool({ name: rest[0], arguments: JSON.parse(rest[1] || "{}") });
    }
    throw new Error(`unknown command ${command}`);
  } catch (error) {
    return { error: String(error), code: error.code ?? null };
  } finally {
    if (client) await client.close();
  }
}

main().then(
  (answer) => { process.stdout.write(JSON.stringify(answer) + "\n"); },
  (error) => { process.stdout.write(JSON.stringify({ error: String(error) }) + "\n"); process.exitCode = 1; },
);
