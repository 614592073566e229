// Builds the native addons in binding.gyp (TUN device, batched UDP) with the node-gyp npm bundles.
// When the running Node ships its own headers (<prefix>/include/node, as distribution packages and
// the official tarballs do), node-gyp is pointed at them, so the build needs no network; otherwise
// node-gyp fetches headers as it normally would.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const args = ['rebuild'];
const prefix = resolve(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
// npm sets npm_config_node_gyp for scripts; outside npm, fall back to node-gyp on PATH.
const nodeGyp = process.env.npm_config_node_gyp;
const result = nodeGyp
  ? spawnSync(process.execPath, [nodeGyp, ...args], { stdio: 'inherit' })
  : spawnSync('node-gyp', args, { stdio: 'inherit' });
if (result.error) console.error(`build-native: cannot run node-gyp: ${result.error.message}`);
process.exit(result.status ?? 1);
