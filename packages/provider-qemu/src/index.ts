// @stele/provider-qemu: fleet hosts as local qemu VMs (development and tests), booted from
// published kernel+initrd copies, user data on a config drive.
export { QemuProviderError } from './errors.ts';
export { plugin, type QemuConfig } from './plugin.ts';
export { QemuProvider, type QemuProviderOptions } from './provider.ts';
