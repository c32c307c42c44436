/** An HTTP error answer: the status and a message saying what to do. */
export class HttpError extends Error {
  static readonly code = 'HttpError'
  override readonly name = 'HttpError'
  constructor (readonly status: number, message: string) { super(message) }
}
