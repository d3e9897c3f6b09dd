/**
 * The subset of Genesys Cloud Platform API models the connector reads or sends, with the field
 * names of the OpenAPI definitions (../shared/reference/genesys-openapi). Every field is optional
 * there (no `required` lists), so every field is optional here.
 */

export const FILE_STATES = ['ARCHIVED', 'AVAILABLE', 'DELETED', 'RESTORED', 'RESTORING', 'UPLOADING', 'ERROR'] as const;
export type FileState = (typeof FILE_STATES)[number];

export const MEDIA_SUBTYPES = ['Trunk', 'Station', 'Consult', 'Screen', 'Snippet'] as const;
export type MediaSubtype = (typeof MEDIA_SUBTYPES)[number];

/** #/definitions/MediaResult */
export interface MediaResult {
  mediaUri?: string;
  waveformData?: number[];
}

/** #/definitions/Annotation (fields used) */
export interface Annotation {
  id?: string;
  name?: string;
  type?: string;
  location?: number;
  durationMs?: number;
  reason?: 'Hold' | 'SecurePause' | 'FlowOrQueue' | 'Pause';
}

interface RecordingCommon {
  id?: string;
  name?: string;
  conversationId?: string;
  path?: string;
  startTime?: string;
  endTime?: string;
  media?: string;
  mediaSubtype?: MediaSubtype;
  mediaSubject?: string;
  annotations?: Annotation[];
  fileState?: FileState;
  restoreExpirationTime?: string;
  archiveDate?: string;
  archiveMedium?: 'CLOUDARCHIVE';
  deleteDate?: string;
  exportDate?: string;
  exportedDate?: string;
  sessionId?: string;
  selfUri?: string;
}

/** #/definitions/RecordingMetadata */
export interface RecordingMetadata extends RecordingCommon {
  region?: string;
}

/** #/definitions/Recording */
export interface Recording extends RecordingCommon {
  /** Keyed by channel; audio recordings use "S". Null when there is no playable media. */
  mediaUris?: Record<string, MediaResult> | null;
  estimatedTranscodeTimeMs?: number;
  actualTranscodeTimeMs?: number;
  outputDurationMs?: number;
  outputSizeInBytes?: number;
  creationTime?: string;
  originalRecordingStartTime?: string;
}

/** #/definitions/ErrorBody (fields used) */
export interface ErrorBody {
  message?: string;
  code?: string;
  status?: number;
  contextId?: string;
  details?: unknown[];
  errors?: unknown[];
}

/** #/definitions/ConversationDetailQueryPredicate and SegmentDetailQueryPredicate (dimension form) */
export interface DetailQueryPredicate {
  type?: 'dimension' | 'property' | 'metric';
  dimension?: string;
  operator?: 'matches' | 'exists' | 'notExists';
  value?: string;
}

export interface DetailQueryClause {
  type: 'and' | 'or';
  predicates: DetailQueryPredicate[];
}

export interface DetailQueryFilter {
  type: 'and' | 'or';
  clauses?: DetailQueryClause[];
  predicates?: DetailQueryPredicate[];
}

/** #/definitions/ConversationQuery (fields used) */
export interface ConversationQuery {
  /** ISO-8601 "start/end"; required. */
  interval: string;
  conversationFilters?: DetailQueryFilter[];
  segmentFilters?: DetailQueryFilter[];
  order?: 'asc' | 'desc' | 'unordered';
  orderBy?: 'conversationStart' | 'conversationEnd' | 'segmentStart' | 'segmentEnd';
  paging?: { pageSize: number; pageNumber: number };
}

/** #/definitions/AnalyticsConversationSegment (fields used) */
export interface AnalyticsConversationSegment {
  segmentStart?: string;
  segmentEnd?: string;
  segmentType?: string;
  queueId?: string;
}

/** #/definitions/AnalyticsSession (fields used) */
export interface AnalyticsSession {
  sessionId?: string;
  mediaType?: string;
  direction?: 'inbound' | 'outbound';
  ani?: string;
  dnis?: string;
  protocolCallId?: string;
  recording?: boolean;
  segments?: AnalyticsConversationSegment[];
}

/** #/definitions/AnalyticsParticipantWithoutAttributes (fields used) */
export interface AnalyticsParticipant {
  participantId?: string;
  participantName?: string;
  purpose?: string;
  userId?: string;
  sessions?: AnalyticsSession[];
}

/** #/definitions/AnalyticsConversationWithoutAttributes (fields used) */
export interface AnalyticsConversation {
  conversationId?: string;
  conversationStart?: string;
  conversationEnd?: string;
  externalTag?: string;
  originatingDirection?: 'inbound' | 'outbound';
  divisionIds?: string[];
  participants?: AnalyticsParticipant[];
}

/** #/definitions/AnalyticsConversationQueryResponse; `conversations` is absent when nothing matched. */
export interface AnalyticsConversationQueryResponse {
  conversations?: AnalyticsConversation[];
  totalHits?: number;
}

/** #/definitions/RecordingSettings (GET /api/v2/recording/settings); TTLs in minutes. */
export interface RecordingSettings {
  maxSimultaneousStreams?: number;
  maxConfigurableScreenRecordingStreams?: number;
  regionalRecordingStorageEnabled?: boolean;
  /** Validity of playback media links, minutes (default 60, 2..60). */
  recordingPlaybackUrlTtl?: number;
  /** Validity of batch download result links, minutes (default 60, 2..60). */
  recordingBatchDownloadUrlTtl?: number;
  stopRecordingWhenOnlyExternalParticipants?: boolean;
}

/** #/definitions/BatchDownloadRequest: recordingId absent = every recording of the conversation. */
export interface BatchDownloadRequest {
  conversationId: string;
  recordingId?: string;
}

/** #/definitions/BatchDownloadJobSubmission (at most 100 items). */
export interface BatchDownloadJobSubmission {
  batchDownloadRequestList: BatchDownloadRequest[];
}

/** #/definitions/BatchDownloadJobSubmissionResult */
export interface BatchDownloadJobSubmissionResult {
  id?: string;
  selfUri?: string;
}

/** #/definitions/BatchDownloadJobResult: either a resultUrl (a pre-authorised link) or an errorMsg. */
export interface BatchDownloadJobResult {
  conversationId?: string;
  recordingId?: string;
  resultUrl?: string;
  contentType?: string;
  errorMsg?: string;
}

/** #/definitions/BatchDownloadJobStatusResult */
export interface BatchDownloadJobStatusResult {
  id?: string;
  jobId?: string;
  expectedResultCount?: number;
  resultCount?: number;
  errorCount?: number;
  status?: 'InProgress' | 'Completed';
  results?: BatchDownloadJobResult[];
  selfUri?: string;
}

/** NamedEntity */
export interface NamedEntity {
  id?: string;
  name?: string;
}

/**
 * GET /api/v2/tokens/me. Not in the OpenAPI extracts (it belongs to the Tokens API group): the
 * fields are those of the public SDKs' TokenInfo model, whose client member is named
 * "OAuthClient" on the wire. It names the client and its organisation; it does not list the
 * client's permissions (those come from its roles), so rights are found by trying the calls.
 */
export interface TokenInfo {
  organization?: NamedEntity;
  homeOrganization?: NamedEntity;
  authorizedScope?: string[];
  clonedUser?: { id?: string; organization?: NamedEntity };
  OAuthClient?: { id?: string; name?: string; authorizedGrantType?: string; organization?: NamedEntity };
}
