// vcsim peer: SOAP login, list VMs through a ContainerView, and armed task faults — all with
// hand-written SOAP envelopes over node:http(s), against the real simulator binary.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureVcsimBinary, isAlive, removeDir, startVcsim, tempDir, type Vcsim } from '../src/index.ts';
import { pinnedHttpRequest } from '../src/vcsim.ts';

const xmlEscape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const moref = (type: string, value: string, tag = '_this') =>
  `<${tag} type="${xmlEscape(type)}">${xmlEscape(value)}</${tag}>`;

class SoapFault extends Error {
  constructor(
    readonly faultType: string,
    message: string,
  ) {
    super(message);
  }
}

/** A minimal vim25 SOAP session: one cookie, one endpoint. */
class Vim {
  private cookie?: string;
  constructor(
    private readonly sdkUrl: string,
    private readonly ca?: string,
  ) {}

  async call(body: string): Promise<string> {
    const envelope =
      '<?xml version="1.0" encoding="UTF-8"?>' +
      '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ' +
      'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
      `<soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;
    const res = await pinnedHttpRequest(this.sdkUrl, {
      method: 'POST',
      headers: {
        'content-type': 'text/xml; charset=utf-8',
        soapaction: 'urn:vim25/7.0',
        ...(this.cookie ? { cookie: this.cookie } : {}),
      },
      body: envelope,
      ca: this.ca,
    });
    const setCookie = res.headers['set-cookie'];
    const session = (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []).find((c) =>
      c.startsWith('vmware_soap_session='),
    );
    if (session) this.cookie = session.split(';')[0];
    if (res.body.includes('Fault>')) {
      // <detail><InvalidLoginFault xsi:type="InvalidLogin">: the xsi:type is the fault's vim25 type.
      const type = /<detail>\s*<\w+[^>]*?:type="(\w+)"/.exec(res.body)?.[1] ?? 'unknown';
      const msg = /<faultstring>([\s\S]*?)<\/faultstring>/.exec(res.body)?.[1] ?? res.body.slice(0, 300);
      throw new SoapFault(type, `SOAP fault ${type}: ${msg}`);
    }
    if (res.status !== 200) throw new Error(`SOAP HTTP ${res.status}: ${res.body.slice(0, 300)}`);
    return res.body;
  }

  get hasSession(): boolean {
    return this.cookie !== undefined;
  }
}

interface ServiceContent {
  rootFolder: string;
  propertyCollector: string;
  viewManager: string;
  sessionManager: string;
}

function morefIn(xml: string, tag: string): string {
  const m = new RegExp(`<${tag} type="[^"]+">([^<]+)</${tag}>`).exec(xml);
  if (!m?.[1]) throw new Error(`no <${tag}> in response: ${xml.slice(0, 500)}`);
  return m[1];
}

async function serviceContent(vim: Vim): Promise<ServiceContent> {
  const xml = await vim.call(
    `<RetrieveServiceContent xmlns="urn:vim25">${moref('ServiceInstance', 'ServiceInstance')}</RetrieveServiceContent>`,
  );
  return {
    rootFolder: morefIn(xml, 'rootFolder'),
    propertyCollector: morefIn(xml, 'propertyCollector'),
    viewManager: morefIn(xml, 'viewManager'),
    sessionManager: morefIn(xml, 'sessionManager'),
  };
}

async function login(vim: Vim, sc: ServiceContent, user: string, password: string): Promise<void> {
  await vim.call(
    `<Login xmlns="urn:vim25">${moref('SessionManager', sc.sessionManager)}` +
      `<userName>${xmlEscape(user)}</userName><password>${xmlEscape(password)}</password></Login>`,
  );
}

interface ObjectProps {
  obj: string;
  props: Record<string, string>;
}

/** RetrievePropertiesEx over objects; values are the raw inner XML of each <val>. */
async function retrieve(
  vim: Vim,
  sc: ServiceContent,
  type: string,
  paths: string[],
  objectSet: string,
): Promise<ObjectProps[]> {
  const xml = await vim.call(
    `<RetrievePropertiesEx xmlns="urn:vim25">${moref('PropertyCollector', sc.propertyCollector)}` +
      `<specSet><propSet><type>${type}</type>${paths.map((p) => `<pathSet>${p}</pathSet>`).join('')}</propSet>` +
      `${objectSet}</specSet><options></options></RetrievePropertiesEx>`,
  );
  const out: ObjectProps[] = [];
  for (const m of xml.matchAll(/<objects>([\s\S]*?)<\/objects>/g)) {
    const inner = m[1] ?? '';
    const obj = /<obj type="[^"]+">([^<]+)<\/obj>/.exec(inner)?.[1];
    if (!obj) continue;
    const props: Record<string, string> = {};
    for (const p of inner.matchAll(/<propSet><name>([^<]+)<\/name><val[^>]*>([\s\S]*?)<\/val><\/propSet>/g)) {
      props[p[1] as string] = p[2] as string;
    }
    out.push({ obj, props });
  }
  return out;
}

async function listVms(vim: Vim, sc: ServiceContent): Promise<ObjectProps[]> {
  const viewXml = await vim.call(
    `<CreateContainerView xmlns="urn:vim25">${moref('ViewManager', sc.viewManager)}` +
      `${moref('Folder', sc.rootFolder, 'container')}<type>VirtualMachine</type><recursive>true</recursive>` +
      '</CreateContainerView>',
  );
  const view = morefIn(viewXml, 'returnval');
  return retrieve(
    vim,
    sc,
    'VirtualMachine',
    ['name', 'runtime.powerState'],
    `<objectSet>${moref('ContainerView', view, 'obj')}<skip>true</skip>` +
      '<selectSet xsi:type="TraversalSpec"><name>view</name><type>ContainerView</type><path>view</path>' +
      '<skip>false</skip></selectSet></objectSet>',
  );
}

async function powerState(vim: Vim, sc: ServiceContent, vm: string): Promise<string | undefined> {
  const [o] = await retrieve(
    vim,
    sc,
    'VirtualMachine',
    ['runtime.powerState'],
    `<objectSet>${moref('VirtualMachine', vm, 'obj')}</objectSet>`,
  );
  return o?.props['runtime.powerState'];
}

/** Runs a *_Task method on a VM and polls the task until it leaves queued/running. */
async function runVmTask(vim: Vim, sc: ServiceContent, method: string, vm: string) {
  const xml = await vim.call(`<${method} xmlns="urn:vim25">${moref('VirtualMachine', vm)}</${method}>`);
  const task = morefIn(xml, 'returnval');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [t] = await retrieve(
      vim,
      sc,
      'Task',
      ['info.state', 'info.error', 'info.descriptionId'],
      `<objectSet>${moref('Task', task, 'obj')}</objectSet>`,
    );
    const state = t?.props['info.state'];
    if (state === 'success' || state === 'error') {
      const error = t?.props['info.error'] ?? '';
      return {
        task,
        state,
        descriptionId: t?.props['info.descriptionId'],
        // The namespace prefix of xsi varies (vcsim writes XMLSchema-instance:type).
        faultType: /<fault [^>]*?:type="(\w+)"/.exec(error)?.[1],
        faultMessage: /<message>([^<]*)<\/message>/.exec(error)?.[1],
      };
    }
    if (Date.now() > deadline) throw new Error(`task ${task} still ${state} after 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('vcsim (govmomi simulator, VPX model)', () => {
  let vc: Vcsim;
  let vim: Vim;
  let sc: ServiceContent;

  beforeAll(async () => {
    const t0 = Date.now();
    const bin = await ensureVcsimBinary();
    console.log(
      `[vcsim] binary ${bin.built ? `built (cache miss) in ${bin.buildMs} ms` : 'from cache'}; ensure took ${Date.now() - t0} ms`,
    );
    vc = await startVcsim();
    console.log(`[vcsim] started in ${vc.startMs} ms at ${vc.url}`);
    vim = new Vim(vc.sdkUrl);
    sc = await serviceContent(vim);
    await login(vim, sc, vc.username, vc.password);
  });

  afterAll(async () => {
    const pid = vc?.process.pid;
    await vc?.stop();
    if (pid !== undefined) expect(isAlive(pid)).toBe(false);
  });

  it('rejects a wrong password with InvalidLogin', async () => {
    const other = new Vim(vc.sdkUrl);
    const content = await serviceContent(other);
    const err = await login(other, content, vc.username, `${vc.password}-wrong`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SoapFault);
    expect((err as SoapFault).faultType).toBe('InvalidLogin');
    expect(other.hasSession).toBe(false);
  });

  it('logs in over SOAP and lists the VPX inventory VMs by name', async () => {
    expect(vim.hasSession).toBe(true);
    const vms = await listVms(vim, sc);
    expect(vms.length).toBeGreaterThan(0);
    for (const vm of vms) {
      expect(vm.obj).toMatch(/^vm-\d+$/);
      expect(vm.props.name).toBeTruthy();
      expect(['poweredOn', 'poweredOff', 'suspended']).toContain(vm.props['runtime.powerState']);
    }
    console.log(`[vcsim] ${vms.length} VMs: ${vms.map((v) => v.props.name).join(', ')}`);
  });

  it('an armed fault fails the next matching task, then the count is used up', async () => {
    const vms = await listVms(vim, sc);
    const on = vms.find((v) => v.props['runtime.powerState'] === 'poweredOn');
    if (!on) throw new Error('no powered-on VM in the VPX model');
    await vc.armFault('VirtualMachine.powerOff', 'InvalidState', 1);
    expect(await vc.faults()).toEqual([
      expect.objectContaining({ descriptionId: 'VirtualMachine.powerOff', fault: 'InvalidState', count: 1 }),
    ]);

    const failed = await runVmTask(vim, sc, 'PowerOffVM_Task', on.obj);
    expect(failed).toMatchObject({
      state: 'error',
      descriptionId: 'VirtualMachine.powerOff',
      faultType: 'InvalidState',
      faultMessage: expect.stringContaining('Stele'),
    });
    expect(await powerState(vim, sc, on.obj)).toBe('poweredOn'); // the fault replaced the work
    expect(await vc.faults()).toEqual([]);

    const ok = await runVmTask(vim, sc, 'PowerOffVM_Task', on.obj);
    expect(ok).toMatchObject({ state: 'success', faultType: undefined });
    expect(await powerState(vim, sc, on.obj)).toBe('poweredOff');
    expect((await vc.taskCounts())['VirtualMachine.powerOff']).toBeGreaterThanOrEqual(2);
  });

  it('a fault limited to one entity leaves other VMs alone; clearFaults disarms', async () => {
    const vms = await listVms(vim, sc);
    const target = vms.find((v) => v.props['runtime.powerState'] === 'poweredOn');
    const other = vms.find((v) => v.obj !== target?.obj);
    if (!target || !other) throw new Error('the VPX model needs two VMs, one powered on');
    expect(await runVmTask(vim, sc, 'PowerOffVM_Task', target.obj)).toMatchObject({ state: 'success' });

    await vc.armFault('VirtualMachine.powerOn', 'InsufficientResourcesFault', 2, other.obj);
    expect(await runVmTask(vim, sc, 'PowerOnVM_Task', target.obj)).toMatchObject({ state: 'success' });
    expect(await vc.faults()).toEqual([expect.objectContaining({ entity: other.obj, count: 2, fired: 0 })]);

    await vc.armFault('VirtualMachine.powerOff', 'TaskInProgress', 3);
    const failed = await runVmTask(vim, sc, 'PowerOffVM_Task', target.obj);
    expect(failed).toMatchObject({ state: 'error', faultType: 'TaskInProgress' });
    expect((await vc.faults()).find((f) => f.descriptionId === 'VirtualMachine.powerOff')).toMatchObject({
      count: 2,
      fired: 1,
    });

    await vc.clearFaults();
    expect(await vc.faults()).toEqual([]);
    expect(await vc.taskCounts()).toEqual({});
    expect(await runVmTask(vim, sc, 'PowerOffVM_Task', target.obj)).toMatchObject({ state: 'success' });
  });

  it('refuses to arm a fault that is not a vim25 MethodFault', async () => {
    await expect(vc.armFault('VirtualMachine.powerOn', 'NoSuchFault', 1)).rejects.toThrow(/unknown vim25 type/);
    await expect(vc.armFault('VirtualMachine.powerOn', 'VirtualMachineConfigSpec', 1)).rejects.toThrow(
      /not a MethodFault/,
    );
    expect(await vc.faults()).toEqual([]);
  });
});

describe('vcsim over TLS', () => {
  let vc: Vcsim;

  beforeAll(async () => {
    vc = await startVcsim({ tls: true });
    console.log(`[vcsim tls] started in ${vc.startMs} ms at ${vc.url}`);
  });

  afterAll(async () => {
    await vc?.stop();
  });

  it('serves https with a certificate the client can pin, and refuses untrusted clients', async () => {
    expect(vc.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(vc.certificatePem).toContain('BEGIN CERTIFICATE');
    await expect(serviceContent(new Vim(vc.sdkUrl))).rejects.toThrow(/self[- ]signed|certificate/i);

    const vim = new Vim(vc.sdkUrl, vc.certificatePem);
    const sc = await serviceContent(vim);
    await login(vim, sc, vc.username, vc.password);
    expect((await listVms(vim, sc)).length).toBeGreaterThan(0);

    await vc.armFault('VirtualMachine.powerOn', 'InvalidState');
    expect(await vc.faults()).toHaveLength(1);
  });
});

describe('vcsim binary cache', () => {
  it('concurrent builds into an empty tools dir yield one complete binary, then a cache hit', async () => {
    const dir = tempDir('vcsim-tools');
    try {
      const [a, b] = await Promise.all([ensureVcsimBinary({ toolsDir: dir }), ensureVcsimBinary({ toolsDir: dir })]);
      console.log(`[vcsim] two concurrent builds: ${a.buildMs} ms and ${b.buildMs} ms`);
      expect(a.path).toBe(b.path);
      expect(a.built || b.built).toBe(true);
      expect(statSync(a.path).mode & 0o111).not.toBe(0);
      expect(readdirSync(join(dir, 'vcsim'))).toEqual([a.path.split('/').pop()]); // no temp leftovers
      const c = await ensureVcsimBinary({ toolsDir: dir });
      expect(c).toEqual({ path: a.path, built: false, buildMs: 0 });
      expect(existsSync(c.path)).toBe(true);
    } finally {
      removeDir(dir);
    }
  });
});
