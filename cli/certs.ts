/** `cryptgpu certs`: a CA, three party certificates and keys, and a parties file that uses them. */
import { Command } from "commander";
import { makeCerts } from "../lib/net/certs.ts";

export function certsCommand(): Command {
  return new Command("certs")
    .description("make a CA, the three parties' certificates and keys, and a parties file (needs openssl)")
    .requiredOption("--out <dir>", "where to write them")
    .requiredOption("--hosts <h0,h1,h2>", "the three parties' hosts (IP addresses or DNS names)")
    .option("--port <port>", "first port; party i listens on port + i", "7400")
    .option("--days <n>", "validity in days", "825")
    .option("--force", "replace the files of a folder that is not empty")
    .action(async (o: { out: string; hosts: string; port: string; days: string; force?: boolean }) => {
      const hosts = o.hosts.split(",").map((h) => h.trim());
      if (hosts.length !== 3 || hosts.some((h) => !h)) {
        throw new Error(`--hosts needs three comma-separated hosts, got '${o.hosts}'`);
      }
      const port = Number(o.port), days = Number(o.days);
      if (!Number.isInteger(port) || port < 1 || port > 65533) {
        throw new Error(`--port must be in [1, 65533], got ${o.port}`);
      }
      if (!Number.isInteger(days) || days < 1) throw new Error(`--days must be a positive integer, got ${o.days}`);
      const file = await makeCerts({
        out: o.out,
        hosts: hosts as [string, string, string],
        ports: [port, port + 1, port + 2],
        days,
        force: o.force,
      });
      console.log(`wrote ${file} with ca.crt and p0..p2 certificates and keys in ${o.out}`);
      console.log("copy parties.json, ca.crt and p0.crt..p2.crt to every host, and pI.key to party I's host only");
    });
}
