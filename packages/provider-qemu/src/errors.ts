import { type ErrorKind, FleetError } from '@stele/fleet';

/** What went wrong with a qemu host or image, and of which kind (see @stele/fleet's errors). */
export class QemuProviderError extends FleetError {
  override name = 'QemuProviderError';
  constructor(message: string, kind: ErrorKind = 'fatal') {
    super(message, kind);
  }
}
