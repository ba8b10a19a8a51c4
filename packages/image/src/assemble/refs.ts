/**
 * A reference as LinuxKit spells it once expanded: a bare name is a Docker Hub library image, a
 * two-part name whose first part is not a host (no '.' or ':', not localhost) is on Docker Hub.
 * `busybox:latest` → `docker.io/library/busybox:latest`, `linuxkit/init:abc` → `docker.io/linuxkit/init:abc`.
 */
export function expandReference(ref: string): string {
  const parts = ref.split('/');
  if (parts.length === 1) return `docker.io/library/${ref}`;
  const [first = ''] = parts;
  if (parts.length === 2 && !first.includes('.') && !first.includes(':') && first !== 'localhost') {
    return `docker.io/${ref}`;
  }
  return ref;
}
