/**
 * What a device's filesystem looks like: a Jetson (L4T release file) running the `myrvm` reverse
 * vending machine app with code, models, config, a systemd unit, logs and a data folder full of
 * awkward names. The parts every device shares are written once per fleet into a template root and
 * copied (real copies, not links) to each device; the per-device parts are written afterwards.
 */
import { mkdirSync, symlinkSync, linkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { randomBytesFrom, Rng } from './random';

export interface ContentOptions {
  app: string;
  seed: string;
  /** MB of model files identical on every device (default 40). */
  sharedModelMB: number;
  /** MB of model files unique to each device (default 20). */
  uniqueModelMB: number;
}

const MB = 1024 * 1024;

function write(root: string, rel: string, data: string | Buffer, mode?: number): string {
  const file = path.join(root, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, data);
  if (mode !== undefined) chmodSync(file, mode);
  return file;
}

const PY_MODULES = ['main', 'config', 'vision/detector', 'vision/classifier', 'vision/camera', 'db/models', 'db/session', 'api/server', 'api/routes', 'hardware/gpio', 'hardware/conveyor', 'sync/uploader', 'sync/queue', 'util/logging', 'util/health'];

function pythonModule(name: string, app: string, rng: Rng): string {
  const cls = name.split('/').pop()!.replace(/(^|_)(\w)/g, (_m, _u: string, c: string) => c.toUpperCase());
  const lines = [`"""${app}: ${name.replace('/', '.')} module."""`, 'import logging', 'import time', '', 'log = logging.getLogger(__name__)', '', ''];
  lines.push(`class ${cls}:`, `    """Part of the ${app} edge runtime."""`, '', '    def __init__(self, config):', '        self.config = config', '        self.started = time.monotonic()', '');
  for (let i = 0; i < rng.int(6, 14); i++) {
    lines.push(`    def step_${i}(self, item):`, `        log.debug("step ${i} %s", item)`, `        return item * ${rng.int(2, 97)} % ${rng.int(101, 9973)}`, '');
  }
  return lines.join('\n');
}

/** The fleet-wide template: code, shared models, generic config and the awkward data folder. */
export function writeTemplateRoot(root: string, o: ContentOptions): void {
  const rng = new Rng(`${o.seed}:template`);
  const app = `opt/${o.app}`;
  for (const mod of PY_MODULES) write(root, `${app}/${o.app}/${mod}.py`, pythonModule(mod, o.app, rng));
  for (const pkg of ['', '/vision', '/db', '/api', '/hardware', '/sync', '/util']) write(root, `${app}/${o.app}${pkg}/__init__.py`, '');
  write(root, `${app}/requirements.txt`, 'numpy==1.24.4\nonnxruntime-gpu==1.16.0\npsycopg2-binary==2.9.9\nfastapi==0.110.0\nuvicorn==0.29.0\nPyYAML==6.0.1\n');
  write(root, `${app}/VERSION`, '2.14.3\n');
  write(root, `${app}/bin/${o.app}-healthcheck`, `#!/bin/sh\nexec python3 -m ${o.app}.util.health "$@"\n`, 0o755);

  // Shared models: the same bytes on every device, as a fleet deployed from one release.
  const detector = Math.round(o.sharedModelMB * 0.6 * MB);
  write(root, `${app}/models/detector-v7.onnx`, randomBytesFrom(`${o.seed}:model:detector`, detector));
  write(root, `${app}/models/classifier-v3.onnx`, randomBytesFrom(`${o.seed}:model:classifier`, Math.round(o.sharedModelMB * MB) - detector));
  write(root, `${app}/models/labels.txt`, 'PET\nHDPE\nALU\nGLASS\nREJECT\n');

  write(
    root,
    `etc/${o.app}/logging.yaml`,
    `version: 1\nformatters:\n  plain:\n    format: "%(asctime)s %(levelname)s %(name)s: %(message)s"\nhandlers:\n  file:\n    class: logging.handlers.RotatingFileHandler\n    filename: /var/log/${o.app}/app.log\n    maxBytes: 10485760\n    backupCount: 5\nroot:\n  level: INFO\n  handlers: [file]\n`,
  );
  write(
    root,
    `etc/systemd/system/${o.app}.service`,
    `[Unit]\nDescription=${o.app} reverse vending machine runtime\nAfter=network-online.target postgresql.service\nWants=network-online.target\n\n[Service]\nType=simple\nUser=jetson\nWorkingDirectory=/opt/${o.app}\nEnvironmentFile=/opt/${o.app}/.env\nExecStart=/usr/bin/python3 -m ${o.app}.main --config /etc/${o.app}/${o.app}.yaml\nRestart=on-failure\nRestartSec=5\n\n[Install]\nWantedBy=multi-user.target\n`,
  );
  writeAwkwardFiles(path.join(root, app, 'data', 'files'));
}

/** Names and metadata that break naive backup tools. */
export function writeAwkwardFiles(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [
    ['with space.txt', 'spaces\n'],
    ['new\nline.txt', 'a newline in the name\n'],
    ['tab\tname.txt', 'a tab in the name\n'],
    ['ünïcødé – ファイル.txt', 'non-ASCII\n'],
    ['-leading-dash.txt', 'looks like an option\n'],
    [`long-${'x'.repeat(191)}.txt`, 'a 200-byte name\n'],
    [`quote'd "name" $HOME *.txt`, 'shell metacharacters\n'],
    ['back\\slash.txt', 'a backslash\n'],
    ['empty.bin', ''],
    ['report.csv', 'id,material,count\n1,PET,120\n2,ALU,48\n'],
    ['secret.key', 'not-a-real-key\n'],
    ['readonly.txt', 'read only\n'],
    ['old.txt', 'from 1999\n'],
    ['future.txt', 'from 2031\n'],
    ['nanos.txt', 'sub-second mtime\n'],
  ];
  for (const [name, content] of files) writeFileSync(path.join(dir, name), content);
  write(dir, 'run.sh', '#!/bin/sh\necho run\n', 0o755);
  mkdirSync(path.join(dir, 'empty-dir'));
  mkdirSync(path.join(dir, 'private-dir'), { mode: 0o700 });
  writeFileSync(path.join(dir, 'private-dir', 'inside.txt'), 'in a 0700 dir\n');
  symlinkSync('with space.txt', path.join(dir, 'link-to-space'));
  symlinkSync('does-not-exist', path.join(dir, 'dangling-link'));
  linkSync(path.join(dir, 'report.csv'), path.join(dir, 'report-hardlink.csv'));
  chmodSync(path.join(dir, 'secret.key'), 0o600);
  chmodSync(path.join(dir, 'readonly.txt'), 0o444);
  utimesSync(path.join(dir, 'old.txt'), new Date('1999-12-31T23:59:59Z'), new Date('1999-12-31T23:59:59Z'));
  utimesSync(path.join(dir, 'future.txt'), new Date('2031-01-01T00:00:00Z'), new Date('2031-01-01T00:00:00Z'));
  utimesSync(path.join(dir, 'nanos.txt'), 1_700_000_000.123456, 1_700_000_000.123456);
}

export interface DeviceIdentity {
  name: string;
  index: number;
  site: string;
}

const L4T = [
  '# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023',
  '# R36 (release), REVISION: 3.0, GCID: 36923193, BOARD: generic, EABI: aarch64, DATE: Fri Jul 19 23:24:25 UTC 2024',
  '# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024',
];

/** Board model (as /proc/device-tree/model reads, NUL-terminated) and Ubuntu base, matching each L4T line. */
const BOARDS = [
  { model: 'NVIDIA Jetson Orin Nano Developer Kit', ubuntu: ['20.04.6 LTS (Focal Fossa)', 'focal', '20.04'] },
  { model: 'NVIDIA Jetson Orin NX Engineering Reference Developer Kit', ubuntu: ['22.04.4 LTS (Jammy Jellyfish)', 'jammy', '22.04'] },
  { model: 'NVIDIA Jetson AGX Orin Developer Kit', ubuntu: ['22.04.5 LTS (Jammy Jellyfish)', 'jammy', '22.04'] },
] as const;

const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'WARNING', 'ERROR'];
const MATERIALS = ['PET', 'HDPE', 'ALU', 'GLASS'];

/** `count` log lines ending at `end`, one every few seconds. */
export function logLines(rng: Rng, device: string, count: number, end: Date): string {
  const out: string[] = [];
  let t = end.getTime() - count * 4000;
  for (let i = 0; i < count; i++) {
    t += rng.int(1000, 7000);
    const level = rng.pick(LEVELS);
    const ts = new Date(t).toISOString().replace('T', ' ').replace('Z', '');
    const msg =
      level === 'ERROR'
        ? `conveyor jam detected on ${device}, retry ${rng.int(1, 3)}`
        : `container ${rng.hex(12)} material=${rng.pick(MATERIALS)} confidence=${(0.8 + rng.next() * 0.2).toFixed(3)} accepted=${rng.next() > 0.1}`;
    out.push(`${ts} ${level} myrvm.vision: ${msg}`);
  }
  return out.join('\n') + '\n';
}

/** Everything that differs between devices: identity, L4T line, secrets-shaped config, engine file, logs. */
export function writeDeviceFiles(root: string, id: DeviceIdentity, o: ContentOptions): void {
  const rng = new Rng(`${o.seed}:${id.name}`);
  const app = `opt/${o.app}`;
  write(root, 'etc/nv_tegra_release', `${L4T[id.index % L4T.length]}\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\nTARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n`);
  write(root, 'etc/hostname', `${id.name}\n`);
  const board = BOARDS[id.index % BOARDS.length]!;
  write(root, 'proc/device-tree/model', `${board.model}\0`);
  const [version, codename, versionId] = board.ubuntu;
  write(root, 'etc/os-release', `PRETTY_NAME="Ubuntu ${version.split(' (')[0]}"\nNAME="Ubuntu"\nVERSION_ID="${versionId}"\nVERSION="${version}"\nVERSION_CODENAME=${codename}\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=${codename}\n`);
  const serial = `14210${String(id.index).padStart(2, '0')}${rng.hex(6)}`;
  write(
    root,
    `etc/${o.app}/${o.app}.yaml`,
    `device:\n  name: ${id.name}\n  serial: "${serial}"\n  site: "${id.site}"\nvision:\n  detector: /opt/${o.app}/models/detector-v7.onnx\n  engine: /opt/${o.app}/models/detector-v7.engine\n  threshold: 0.85\n  camera: /dev/video0\ndatabase:\n  url: postgresql:///${o.app}?host=/run/postgresql\n  local: /opt/${o.app}/data/local.db\nsync:\n  endpoint: https://rvm.example.invalid/api/v2\n  interval_s: 300\n`,
  );
  write(root, `${app}/.env`, `# fake values for the test fleet\n${o.app.toUpperCase()}_DEVICE=${id.name}\n${o.app.toUpperCase()}_API_TOKEN=test-${rng.hex(32)}\nDATABASE_URL=postgresql://${o.app}@/${o.app}?host=/run/postgresql\nLOG_LEVEL=INFO\n`, 0o600);
  // TensorRT engines are built on each device: unique bytes.
  write(root, `${app}/models/detector-v7.engine`, randomBytesFrom(`${o.seed}:${id.name}:engine`, Math.round(o.uniqueModelMB * MB)));

  const logs = `var/log/${o.app}`;
  const now = new Date();
  write(root, `${logs}/app.log`, logLines(rng, id.name, 2000, now));
  write(root, `${logs}/vision.log`, logLines(rng, id.name, 800, now));
  write(root, `${logs}/app.log.1`, logLines(rng, id.name, 3000, new Date(now.getTime() - 86_400_000)));
  for (let n = 2; n <= 5; n++) {
    const end = new Date(now.getTime() - n * 86_400_000);
    const file = write(root, `${logs}/app.log.${n}.gz`, gzipSync(logLines(rng, id.name, 4000, end)));
    utimesSync(file, end, end);
  }
}
