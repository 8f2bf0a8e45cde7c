// The errors the API client reports (api.ts re-exports them; its callers import from there).

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly statusCode: number | undefined,
  ) {
    super(message);
  }
}

/** undici says only "fetch failed"; the reason (ECONNREFUSED, a certificate...) is in its cause. */
export function unreachable(server: string, err: unknown): ApiError {
  const cause = (err as { cause?: { message?: string } }).cause;
  const reason = cause?.message ?? (err as Error).message;
  return new ApiError(
    `cannot reach the API server at ${server}: ${reason} (is it running, and is the kubeconfig's server address right?)`,
    undefined,
  );
}

/** A response other than 200: its status and the start of its body (a Status object, usually). */
export async function statusError(
  what: string,
  res: { status: number; text(): Promise<string> },
): Promise<ApiError> {
  const body = await res.text().catch(() => '');
  return new ApiError(`${what}: ${res.status} ${body.slice(0, 200)}`, res.status);
}
