// Runs kproxy's CLI entry point (`main` of /project/dist/cli/main.js, what
// `node dist/cli.js` calls) once per request, in one long-lived process: under
// the VM's software emulation loading kproxy's modules costs tens of seconds, so
// it is paid once instead of on every command. Plain node, started in the node's
// network namespace:
//   node kproxy-driver.mjs   (stdin: one JSON request per line)
// Request {"log": FILE, "argv": [...]}: the command's stdout and stderr go to FILE,
// then "done <exit code>" is printed. "ready" is printed once main is loaded.
import { createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

const { main } = await import('/project/dist/cli/main.js');
console.log('ready');
for await (const line of createInterface({ input: process.stdin })) {
  const { log, argv } = JSON.parse(line);
  const out = createWriteStream(log);
  let code;
  try {
    code = await main(argv, { stdout: out, stderr: out });
  } catch (err) {
    out.write(`uncaught: ${err?.stack ?? err}\n`);
    code = 70;
  }
  // winston writes asynchronously: let it flush before the file is closed
  await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => out.end(r));
  console.log(`done ${code}`);
}
