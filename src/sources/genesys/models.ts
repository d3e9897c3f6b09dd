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
