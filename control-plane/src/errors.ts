import { status } from "@grpc/grpc-js";

/** The closed set of failure kinds the API reports; each maps 1:1 to a gRPC status code. */
export type ErrorCode =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "permission_denied"
  | "unauthenticated"
  | "failed_precondition"
  | "resource_exhausted"
  | "deadline_exceeded";

const grpcStatusByCode: Record<ErrorCode, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  permission_denied: status.PERMISSION_DENIED,
  unauthenticated: status.UNAUTHENTICATED,
  failed_precondition: status.FAILED_PRECONDITION,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  deadline_exceeded: status.DEADLINE_EXCEEDED,
};

/**
 * An expected failure whose message is safe to show the caller. Messages are lowercase,
 * name the offending value and say what would be valid. Anything that is not an AppError
 * is an internal error: logged in full, reported to the caller generically.
 */
export class AppError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AppError";
    this.code = code;
  }

  /** The gRPC status code this error is reported with. */
  get grpcStatus(): status {
    return grpcStatusByCode[this.code];
  }
}

/** A request value is malformed or out of range. */
export const invalidArgument = (message: string) => new AppError("invalid_argument", message);
/** The named entity does not exist (or the caller may not learn that it does). */
export const notFound = (message: string) => new AppError("not_found", message);
/** An entity with the same natural key already exists. */
export const alreadyExists = (message: string) => new AppError("already_exists", message);
/** The caller is authenticated but may not do this. */
export const permissionDenied = (message: string) => new AppError("permission_denied", message);
/** No valid credential was presented. */
export const unauthenticated = (message: string) => new AppError("unauthenticated", message);
/** The system is not in a state that allows this (e.g. deleting an organization that owns rows). */
export const failedPrecondition = (message: string) => new AppError("failed_precondition", message);
/** A size or count limit was exceeded. */
export const resourceExhausted = (message: string) => new AppError("resource_exhausted", message);

/** The work did not finish within the deadline it was given. */
export const deadlineExceeded = (message: string) => new AppError("deadline_exceeded", message);

/** Exhaustiveness guard for switches over closed unions. */
export function assertNever(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
