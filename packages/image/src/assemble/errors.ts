/** An assembly error that names what it is about: the image (or files entry) and the field. */
export class AssembleError extends Error {
  constructor(
    /** e.g. `services[2] "sshd" (linuxkit/sshd:abc)` or `files[3]`. */
    readonly subject: string,
    /** The field, e.g. `capabilities`, `binds[1]`, `org.mobyproject.config label`. */
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${subject}: ${field}: ${detail}`);
    this.name = 'AssembleError';
  }
}
